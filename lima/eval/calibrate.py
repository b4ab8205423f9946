"""``lima calibrate``: run a judge over a human-labelled pairwise set and measure how well it agrees.

Label formats (gold is always A = first response better, B = second, tie):

- ``llmbar``  JSON list (or JSONL) of ``input, output_1, output_2, label`` (1 | 2; no ties).
- ``pandalm`` JSON list of ``instruction, input, response1, response2, annotator1..3`` (0 tie, 1, 2);
  gold is the majority of the three annotators; when all three differ (one each) gold is a tie.
- ``autoj``   JSONL of ``scenario, label, prompt, "response 1", "response 2"`` (0 first, 1 second, 2 tie);
  ``scenario`` is the category.
- ``mtbench`` JSON list or JSONL of MT-Bench human judgments: ``question_id, model_a, model_b, winner``
  (model_a | model_b | tie | "tie (bothbad)"), ``conversation_a/_b`` (role/content turns) and ``turn``;
  only first-turn judgments are used (the number skipped is reported); the category is ``model_a vs model_b``.
- ``lima``    the project's own JSONL (``data/judge_pairs.jsonl``): ``prompt, answer_1, answer_2, label``
  (1 | 2 | 0 = tie), optional ``id`` and ``category``.

A calibration is stored per judge, under the judge's annotator hash, in ``$LIMA_CACHE_DIR/calibrations``
(default ``~/.cache/lima``), so that every later ``lima judge`` / ``lima run`` with the same judge shows how far
its verdicts can be trusted (:func:`find_calibration`, :func:`calibration_note`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import stable_hash
from lima.eval.judge import PairItem
from lima.eval.parsers import VERDICTS
from lima.eval.stats import bootstrap_ci

FORMATS = ("llmbar", "pandalm", "autoj", "mtbench", "lima")
_REQUIRED = {
    "llmbar": ("input", "output_1", "output_2", "label"),
    "pandalm": ("instruction", "response1", "response2", "annotator1", "annotator2", "annotator3"),
    "autoj": ("prompt", "response 1", "response 2", "label"),
    "mtbench": ("question_id", "model_a", "model_b", "winner", "conversation_a", "conversation_b"),
    "lima": ("prompt", "answer_1", "answer_2", "label"),
}

_VALUES = {
    "llmbar": "label 1 or 2",
    "pandalm": "annotator1..3 each 0 (tie), 1 or 2",
    "autoj": "label 0, 1 or 2 (tie)",
    "mtbench": "winner model_a, model_b or tie…, and user/assistant turns in both conversations",
    "lima": "label 1, 2 or 0 (tie), and prompt/answer_1/answer_2 as strings",
}


def _load_rows(path: Path) -> list[Any]:
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a leading BOM is not part of the JSON
    except UnicodeDecodeError as exc:
        raise LimaError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            f"re-save the labels file as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.json"
        ) from None
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise LimaError(f"{path}:{lineno}: neither a JSON list nor JSONL ({exc.msg})") from None
        return rows


def _guess(row: Any) -> list[str]:
    return [f for f, need in _REQUIRED.items() if isinstance(row, dict) and all(k in row for k in need)]


def _majority(votes: list[int]) -> str:
    label, count = Counter(votes).most_common(1)[0]
    return "tie" if count == 1 or label == 0 else ("A" if label == 1 else "B")


def _first_turn(conversation: Any) -> tuple[str, str] | None:
    if not isinstance(conversation, list):
        return None
    user = next(
        (t.get("content") for t in conversation if isinstance(t, dict) and t.get("role") == "user"), None
    )
    answer = next(
        (t.get("content") for t in conversation if isinstance(t, dict) and t.get("role") == "assistant"), None
    )
    return (user, answer) if isinstance(user, str) and isinstance(answer, str) else None


def read_labelled_pairs(path: str | os.PathLike, fmt: str) -> tuple[list[PairItem], int]:
    """Items with ``meta["gold"]`` (A/B/tie) and ``meta["category"]``; also how many rows were skipped."""
    path = Path(path)
    if fmt not in FORMATS:
        raise LimaError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise LimaError(f"{path}: labels file not found")
    rows = _load_rows(path)
    items: list[PairItem] = []
    skipped = 0
    for index, row in enumerate(rows):
        missing = [k for k in _REQUIRED[fmt] if not isinstance(row, dict) or k not in row]
        if missing:
            fits = [f for f in _guess(row) if f != fmt]
            hint = f"; it looks like --format {fits[0]}" if fits else ""
            raise LimaError(f"{path}: row {index + 1}: missing {', '.join(missing)} for --format {fmt}{hint}")
        try:
            if fmt == "llmbar":
                gold = {1: "A", 2: "B"}[int(row["label"])]
                items.append(
                    PairItem(str(index), row["input"], row["output_1"], row["output_2"], {"gold": gold})
                )
            elif fmt == "pandalm":
                prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
                votes = [int(row[f"annotator{i}"]) for i in (1, 2, 3)]
                if any(v not in (0, 1, 2) for v in votes):
                    raise KeyError(votes)
                items.append(
                    PairItem(
                        str(row.get("idx", index)),
                        prompt,
                        row["response1"],
                        row["response2"],
                        {"gold": _majority(votes)},
                    )
                )
            elif fmt == "autoj":
                gold = {0: "A", 1: "B", 2: "tie"}[int(row["label"])]
                meta = {"gold": gold, "category": row.get("scenario")}
                items.append(
                    PairItem(
                        str(row.get("id", index)), row["prompt"], row["response 1"], row["response 2"], meta
                    )
                )
            elif fmt == "mtbench":
                if int(row.get("turn", 1)) != 1:
                    skipped += 1
                    continue
                first_a, first_b = _first_turn(row["conversation_a"]), _first_turn(row["conversation_b"])
                if first_a is None or first_b is None:
                    raise KeyError("conversation")
                winner = str(row["winner"])
                gold = {"model_a": "A", "model_b": "B"}.get(
                    winner, "tie" if winner.startswith("tie") else None
                )
                if gold is None:
                    raise KeyError(winner)
                key = f"{row['question_id']}-{row['model_a']}-{row['model_b']}-{row.get('judge', index)}-{index}"
                meta = {"gold": gold, "category": f"{row['model_a']} vs {row['model_b']}"}
                items.append(PairItem(key, first_a[0], first_a[1], first_b[1], meta))
            elif fmt == "lima":
                gold = {1: "A", 2: "B", 0: "tie"}[int(row["label"])]
                if not all(isinstance(row[k], str) for k in ("prompt", "answer_1", "answer_2")):
                    raise TypeError("texts")
                meta = {"gold": gold, "category": row.get("category")}
                items.append(
                    PairItem(str(row.get("id", index)), row["prompt"], row["answer_1"], row["answer_2"], meta)
                )
        except (KeyError, ValueError, TypeError):
            raise LimaError(
                f"{path}: row {index + 1}: label/annotation value is not valid for --format {fmt}"
                f" (expected {_VALUES[fmt]})"
            ) from None
    if not items:
        raise LimaError(f"{path}: no usable labelled pairs for --format {fmt}")
    return items, skipped


def _longer_wins_pct(items: list[PairItem], verdicts: list[str]) -> float | None:
    """Among decisive verdicts on pairs of unequal length: how often the longer answer won (%)."""
    hits = total = 0
    for item, verdict in zip(items, verdicts, strict=True):
        if verdict == "tie" or len(item.answer_a) == len(item.answer_b):
            continue
        total += 1
        hits += (verdict == "A") == (len(item.answer_a) > len(item.answer_b))
    return round(100 * hits / total, 2) if total else None


def _tie_discounted(pred: str, gold: str) -> float:
    """LIMA's per-item credit: 1 when both agree, 0.5 when exactly one says tie, 0 otherwise."""
    return 1.0 if pred == gold else 0.5 if (pred == "tie") != (gold == "tie") else 0.0


def chance_levels(golds: Sequence[str]) -> dict[str, float | None]:
    """The best score an answer-blind judge can reach on these gold labels: one constant verdict for every
    pair. "Always tie" is also what a judge that always picks the first position gets once its two orders are
    combined, so this is the floor that a position-biased judge reaches without reading a word."""
    if not golds:
        return {"accuracy": None, "tie_discounted_accuracy": None}
    n = len(golds)
    return {
        "accuracy": round(max(golds.count(v) for v in VERDICTS) / n, 4),
        "tie_discounted_accuracy": round(
            max(sum(_tie_discounted(v, g) for g in golds) for v in VERDICTS) / n, 4
        ),
    }


def _ci(values: list[float], resamples: int, seed: int) -> list[float | None]:
    if not values:
        return [None, None]
    low, high = bootstrap_ci(values, resamples, seed)
    return [round(low, 4), round(high, 4)]


def _soft_block(
    scored: list[tuple[PairItem, dict[str, Any]]], resamples: int, seed: int
) -> dict[str, Any] | None:
    """How often a soft judge's pair preference (P(first answer better), both orders averaged, so position
    bias cancels) lies on the humans' side of 0.5, over pairs the humans did not call a tie; chance is 0.5."""
    prefs = [
        (j["preference"], item.meta["gold"])
        for item, j in scored
        if j.get("preference") is not None and item.meta["gold"] != "tie"
    ]
    if not prefs:
        return None
    credit = [0.5 if p == 0.5 else float((p > 0.5) == (gold == "A")) for p, gold in prefs]
    ci95 = _ci(credit, resamples, seed)
    return {
        "n": len(credit),
        "agreement": round(sum(credit) / len(credit), 4),
        "ci95": ci95,
        "chance": 0.5,
        "separates": ci95[0] is not None and ci95[0] > 0.5,
        "mean_preference_for_human_choice": round(
            sum(p if gold == "A" else 1 - p for p, gold in prefs) / len(prefs), 4
        ),
    }


def calibration_block(
    items: Sequence[PairItem],
    judgments: Sequence[dict[str, Any]],
    resamples: int = 1000,
    seed: int = 0,
    soft: bool = False,
) -> dict[str, Any]:
    """Agreement of the judge's combined verdicts with the gold labels of ``items``, with bootstrap 95% CIs
    over pairs, the answer-blind chance level, position consistency and length bias. Pairs without a verdict
    (errors) are counted and left out, as in ``lima judge``."""
    scored = [(item, j) for item, j in zip(items, judgments, strict=True) if j["verdict"] is not None]
    preds = [j["verdict"] for _, j in scored]
    golds = [item.meta["gold"] for item, _ in scored]
    exact = [float(p == g) for p, g in zip(preds, golds, strict=True)]
    discounted = [_tie_discounted(p, g) for p, g in zip(preds, golds, strict=True)]
    chance = chance_levels(golds)
    tda = round(sum(discounted) / len(discounted), 4) if discounted else None
    ci95 = {
        "accuracy": _ci(exact, resamples, seed),
        "tie_discounted_accuracy": _ci(discounted, resamples, seed),
    }
    low, high = ci95["tie_discounted_accuracy"]
    floor = chance["tie_discounted_accuracy"]
    decisive = [o for _, j in scored for o in j["orders"] if o.get("positional") not in (None, "tie")]
    block = {
        "n": len(scored),
        "errors": len(items) - len(scored),
        "accuracy": round(sum(exact) / len(exact), 4) if exact else None,
        "tie_discounted_accuracy": tda,
        "ci95": ci95,
        "ci_method": f"percentile bootstrap over pairs ({resamples} resamples)",
        "chance": chance,
        # The decision the report states: does the CI of LIMA's agreement measure clear the chance level?
        "separates": bool(scored) and low is not None and low > floor,
        "below_chance": bool(scored) and high is not None and high < floor,
        "verdicts": {v: preds.count(v) for v in VERDICTS},
        "position_consistency": round(100 * sum(j["consistent"] for _, j in scored) / len(scored), 2)
        if scored
        else None,
        "first_position_pick_pct": round(
            100 * sum(o["positional"] == "A" for o in decisive) / len(decisive), 2
        )
        if decisive
        else None,
        "longer_wins_pct_judge": _longer_wins_pct([i for i, _ in scored], preds),
        "longer_wins_pct_human": _longer_wins_pct(list(items), [i.meta["gold"] for i in items]),
        **({"soft": _soft_block(scored, resamples, seed)} if soft else {}),
    }
    problem = calibration_problem(block)
    if problem is not None:  # too small or one-sided: no verdict on the judge either way
        block.update(separates=False, below_chance=False, problem=problem)
        if block.get("soft"):
            block["soft"]["separates"] = False
    return block


# --- the per-judge store ------------------------------------------------------------------------------


def judge_hash(config: Any) -> str:
    """The annotator hash of a judge config: what its replies depend on (the judge cache uses it too)."""
    from lima.eval.judge import judge_config_hash

    return judge_config_hash(config)


def _verdict_settings(config: Any) -> dict[str, Any]:
    """Settings that change the combined verdicts without changing a single reply (so not in the hash)."""
    settings = {name: getattr(config, name, None) for name in ("parser", "combine", "verdict")}
    if getattr(config, "verdict", None) == "logprobs" or getattr(config, "panel", None) is not None:
        settings["tie_margin"] = getattr(config, "tie_margin", None)  # soft judges: decides ties
    return settings


def calibrations_dir() -> Path:
    from lima.core.models import cache_dir

    return cache_dir() / "calibrations"


def store_calibration(config: Any, block: dict[str, Any]) -> Path:
    """Record ``block`` under the judge's hash, one entry per (verdict settings, labels file); returns the file."""
    from lima.core.io import write_json

    key = judge_hash(config)
    path = calibrations_dir() / f"{key}.json"
    entries = _read_store(path)
    entry_key = stable_hash([_verdict_settings(config), block["labels"]["sha256"]])
    entries[entry_key] = {**block, "judge_hash": key, "settings": _verdict_settings(config)}
    from lima.eval.judge import judge_name

    write_json(path, {"judge_hash": key, "judge": judge_name(config), "entries": entries})
    return path


def _read_store(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return dict(data["entries"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # absent, or damaged by hand: a calibration is cheap to redo, never a reason to fail


# Below this many scored pairs, or with one gold label on this share of pairs, a calibration is shown as what it
# is (too small, one-sided) and never as a verdict on the judge: 8 pairs all labelled "B" put chance at 100%.
MIN_PAIRS = 20
ONE_SIDED_CHANCE = 0.9


def calibration_problem(block: dict[str, Any] | None) -> str | None:
    """Why ``block`` cannot judge the judge (too small, one-sided), or None when it can."""
    if not block or not block.get("n"):
        return None
    if block["n"] < MIN_PAIRS:
        return f"too small to judge the judge ({block['n']} pairs scored, fewer than {MIN_PAIRS})"
    chance = (block.get("chance") or {}).get("accuracy")
    if chance is not None and chance >= ONE_SIDED_CHANCE:
        gold = (block.get("labels") or {}).get("gold") or {}
        top = max(gold, key=lambda k: gold[k]) if gold else "one label"
        return (
            f"one-sided labels ({_pct(chance)} of the gold labels are {top}, so a constant verdict scores "
            f"{_pct(chance)}): it cannot judge the judge"
        )
    return None


def _describe(block: dict[str, Any]) -> str:
    """Which stored calibration this is: labels file, its hash, n and date."""
    labels = block.get("labels") or {}
    sha = str(labels.get("sha256") or "")[:12]
    when = str(block.get("calibrated_at") or "")[:10] or "undated"
    return f"{labels.get('name', 'labelled pairs')} (sha256 {sha or '?'}, n={block.get('n')}, {when})"


def find_calibration(config: Any) -> dict[str, Any] | None:
    """The stored calibration this judge's runs show, or None.

    A calibration belongs to the judge (its hash and verdict settings) *and* its labels file. With
    ``calibration_labels:`` set, only the calibration on that file (same SHA-256) is shown. Otherwise the
    stored one with the most scored pairs among those that can judge the judge (not too small, not one-sided;
    then the largest of all), oldest first on a tie — never simply the newest — and ``shown_because`` says
    which one it is and why."""
    path = calibrations_dir() / f"{judge_hash(config)}.json"
    settings = _verdict_settings(config)
    matching = [e for e in _read_store(path).values() if e.get("settings") == settings]
    wanted = getattr(config, "calibration_labels", None)
    if wanted:
        from lima.core.io import path_sha256

        labels = Path(wanted)
        if not labels.is_file():
            raise LimaError(
                f"calibration_labels: {labels} not found; give the labels file the judge was calibrated on, "
                "or remove the field"
            )
        sha = path_sha256(labels)
        chosen = [e for e in matching if (e.get("labels") or {}).get("sha256") == sha]
        if not chosen:
            return None
        return {**chosen[0], "shown_because": f"configured: calibration_labels: {wanted}"}
    if not matching:
        return None
    usable = [e for e in matching if calibration_problem(e) is None] or matching
    oldest_first = sorted(usable, key=lambda e: str(e.get("calibrated_at", "")))
    best = max(oldest_first, key=lambda e: e.get("n") or 0)  # max keeps the first (oldest) on a tie
    why = (
        f"the largest usable of {len(matching)} stored calibrations of this judge"
        if len(matching) > 1
        else "the only stored calibration of this judge"
    )
    return {**best, "shown_because": f"{why}: {_describe(best)}; set calibration_labels: to pin one"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def calibration_note(block: dict[str, Any] | None) -> str:
    """One plain sentence on how far a judge's verdicts can be trusted (for reports and the CLI)."""
    if block is None:
        return (
            "uncalibrated judge: its agreement with humans is unknown. Calibrate it with "
            "`lima calibrate JUDGE_CONFIG --labels data/judge_pairs.jsonl --format lima` "
            "(or a human-labelled set such as LLMBar: --format llmbar)"
        )
    labels = _describe(block)
    if not block.get("n"):
        return (
            f"calibration on {labels}: no parsed verdict on {block.get('errors', 0)} pair(s): "
            "this judge cannot separate the answers"
        )
    problem = calibration_problem(block)
    low, high = block["ci95"]["tie_discounted_accuracy"]
    acc_low, acc_high = block["ci95"]["accuracy"]
    text = (
        f"agreement with humans on {labels}: {_pct(block['tie_discounted_accuracy'])} "
        f"tie-discounted (95% CI {_pct(low)}–{_pct(high)}), accuracy {_pct(block['accuracy'])} "
        f"(95% CI {_pct(acc_low)}–{_pct(acc_high)}); chance {_pct(block['chance']['tie_discounted_accuracy'])} "
        f"tie-discounted / {_pct(block['chance']['accuracy'])} accuracy"
    )
    biases = []
    if (consistency := block.get("position_consistency")) is not None:
        biases.append(f"position consistency {consistency:.0f}%")
    if (longer := block.get("longer_wins_pct_judge")) is not None:
        human = block.get("longer_wins_pct_human")
        humans = f" (humans {human:.0f}%)" if human is not None else ""
        biases.append(f"longer answer preferred in {longer:.0f}% of decisive verdicts{humans}")
    if biases:
        text += "; " + ", ".join(biases)
    soft = block.get("soft")
    if soft:
        soft_low, soft_high = soft["ci95"]
        text += (
            f"; its soft preference (both orders averaged) sides with the humans on {_pct(soft['agreement'])} "
            f"of {soft['n']} decisive pairs (95% CI {_pct(soft_low)}–{_pct(soft_high)}, chance 50%)"
        )
    if problem is not None:
        return f"{text}: {problem}; calibrate on a larger, balanced labels file"
    if block.get("separates"):
        return text + ": above chance"
    if soft and soft.get("separates"):
        return (
            text + ": its verdicts cannot separate the answers (the CI includes chance), but its soft "
            "preferences can: read the soft win rate, not the win rate"
        )
    if block.get("below_chance"):
        # The CI says "worse than a constant verdict", not which answer the judge prefers.
        return text + ": BELOW chance (the whole CI lies under it): its win rates are not evidence"
    return (
        text + ": the CI includes chance, so this judge cannot separate the answers; its win rates are noise"
    )


_RESULT_ONLY = ("agreement", "note", "skipped_rows", "format", "client", "stored", "store_error")


def stored_block(result: dict[str, Any]) -> dict[str, Any]:
    """The calibration block of a :func:`run_calibration` result (what the store and summaries carry)."""
    return {k: v for k, v in result.items() if k not in _RESULT_ONLY}


def run_calibration(
    config: Any,
    labels: Path,
    fmt: str,
    out_dir: Path,
    limit: int | None = None,
    store: bool = True,
) -> dict[str, Any]:
    """Judge every labelled pair (both orders); write predictions, gold, judgments and calibration.json, and
    (``store``) record the calibration block under the judge's hash for later judge summaries and reports."""
    from lima.core.io import atomic_open, path_sha256, write_json
    from lima.core.llm_client import LLMClient
    from lima.core.manifest import RunManifest
    from lima.eval.agreement import agreement_report
    from lima.eval.judge import PairwiseJudge, is_soft

    labels = Path(labels)
    items, skipped = read_labelled_pairs(labels, fmt)
    if limit is not None:
        items = items[:limit]
    out_dir = Path(out_dir)
    cache = Path(config.cache) if config.cache else out_dir / "judge_cache.sqlite"
    with RunManifest(out_dir, "calibrate", config, inputs=[labels], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            judgments = PairwiseJudge(config, client).judge(items, desc=f"calibrating on {labels.name}")
            stats = client.stats.as_dict()
        ok = [(item, j) for item, j in zip(items, judgments, strict=True) if j["verdict"] is not None]
        pred = {item.id: {"verdict": j["verdict"], "category": item.meta.get("category")} for item, j in ok}
        gold = {
            item.id: {"verdict": item.meta["gold"], "category": item.meta.get("category")} for item in items
        }
        report = agreement_report(pred, gold)
        block = calibration_block(items, judgments, config.bootstrap, config.seed, soft=is_soft(config))
        golds = [item.meta["gold"] for item in items]
        block["labels"] = {
            "name": labels.name,
            "path": str(labels),
            "format": fmt,
            "sha256": path_sha256(labels),
            "pairs": len(items),
            "gold": {v: golds.count(v) for v in VERDICTS},
            "limit": limit,
        }
        block["judge_hash"] = judge_hash(config)
        block["cohen_kappa"] = report["cohen_kappa"]
        block["calibrated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        block["cost"] = {k: stats.get(k) for k in ("requests", "prompt_tokens", "completion_tokens")}
        result = {
            "agreement": report,
            **block,
            "note": calibration_note(block),
            "skipped_rows": skipped,
            "format": fmt,
            "client": stats,
        }
        if store:
            try:
                result["stored"] = str(store_calibration(config, block))
            except OSError as exc:  # a read-only cache dir must not lose the calibration just measured
                result["stored"] = None
                result["store_error"] = f"{calibrations_dir()}: {exc.strerror or exc}; set LIMA_CACHE_DIR"
        with atomic_open(out_dir / "predictions.jsonl") as fh:
            for key, row in pred.items():
                fh.write(json.dumps({"id": key, **row}, ensure_ascii=False) + "\n")
        with atomic_open(out_dir / "gold.jsonl") as fh:
            for key, row in gold.items():
                fh.write(
                    json.dumps(
                        {"id": key, "label": row["verdict"], "category": row["category"]}, ensure_ascii=False
                    )
                    + "\n"
                )
        with atomic_open(out_dir / "judgments.jsonl") as fh:
            for judgment in judgments:
                fh.write(json.dumps(judgment, ensure_ascii=False) + "\n")
        write_json(out_dir / "calibration.json", result)
        manifest.update(
            client=stats, result={k: v for k, v in result.items() if k not in ("agreement", "client")}
        )
    return result
