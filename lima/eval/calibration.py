"""The calibration engine: how far a judge's verdicts agree with human labels (with bootstrap CIs, the
answer-blind chance level, position consistency and length bias), the per-judge store of calibrations, and the
plain sentence every summary and report shows.

A calibration belongs to a judge (its annotator hash, :func:`lima.eval.judging.judge_hash`, and the verdict
settings that change verdicts without changing replies) **and** to its labels file (SHA-256): the store, in
``$LIMA_CACHE_DIR/calibrations/<judge hash>.json`` (default ``~/.cache/lima``), keeps one entry per labels file.
A run shows the calibration configured for its judge (``calibration_labels:``), or says which stored one it
shows (:func:`find_calibration`). A calibration too small (fewer than ``MIN_PAIRS`` scored pairs) or one-sided
(one gold label on ``ONE_SIDED_CHANCE`` of the pairs) is shown as such, never as a verdict on the judge.

Layer: engines. Imports metrics, the bottom layer and :mod:`lima.eval.judging` (for the judge's identity).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import stable_hash
from lima.eval.judging import judge_hash, judge_name
from lima.eval.metrics import (
    chance_levels,
    cluster_bootstrap_ci,
    first_position_pick_pct,
    position_consistency,
    tie_discounted,
)
from lima.eval.parsers import VERDICTS
from lima.eval.records import PairItem

__all__ = ["chance_levels", "judge_hash"]


def _longer_wins_pct(items: list[PairItem], verdicts: list[str]) -> float | None:
    """Among decisive verdicts on pairs of unequal length: how often the longer answer won (%)."""
    hits = total = 0
    for item, verdict in zip(items, verdicts, strict=True):
        if verdict == "tie" or len(item.answer_a) == len(item.answer_b):
            continue
        total += 1
        hits += (verdict == "A") == (len(item.answer_a) > len(item.answer_b))
    return round(100 * hits / total, 2) if total else None


def pair_key(item: PairItem) -> str:
    """One labelled pair, whichever human judge labelled it and in which order its answers came: the labels
    of several judges on one pair are resampled together."""
    return stable_hash([item.prompt, sorted((item.answer_a, item.answer_b))])


def _ci(values: list[float], resamples: int, seed: int, pairs: list[str]) -> list[float | None]:
    if not values:
        return [None, None]
    low, high = cluster_bootstrap_ci(values, pairs, resamples, seed)
    return [round(low, 4), round(high, 4)]


def _soft_block(
    scored: list[tuple[PairItem, dict[str, Any]]], resamples: int, seed: int
) -> dict[str, Any] | None:
    """How often a soft judge's pair preference (P(first answer better), both orders averaged, so position
    bias cancels) lies on the humans' side of 0.5, over pairs the humans did not call a tie; chance is 0.5."""
    prefs = [
        (j["preference"], item.meta["gold"], pair_key(item))
        for item, j in scored
        if j.get("preference") is not None and item.meta["gold"] != "tie"
    ]
    if not prefs:
        return None
    credit = [0.5 if p == 0.5 else float((p > 0.5) == (gold == "A")) for p, gold, _ in prefs]
    ci95 = _ci(credit, resamples, seed, [pair for _, _, pair in prefs])
    return {
        "n": len(credit),
        "agreement": round(sum(credit) / len(credit), 4),
        "ci95": ci95,
        "chance": 0.5,
        "separates": ci95[0] is not None and ci95[0] > 0.5,
        "mean_preference_for_human_choice": round(
            sum(p if gold == "A" else 1 - p for p, gold, _ in prefs) / len(prefs), 4
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
    discounted = [tie_discounted(p, g) for p, g in zip(preds, golds, strict=True)]
    chance = chance_levels(golds)
    tda = round(sum(discounted) / len(discounted), 4) if discounted else None
    pairs = [pair_key(item) for item, _ in scored]
    ci95 = {
        "accuracy": _ci(exact, resamples, seed, pairs),
        "tie_discounted_accuracy": _ci(discounted, resamples, seed, pairs),
    }
    low, high = ci95["tie_discounted_accuracy"]
    floor = chance["tie_discounted_accuracy"]
    block = {
        "n": len(scored),
        "errors": len(items) - len(scored),
        "accuracy": round(sum(exact) / len(exact), 4) if exact else None,
        "tie_discounted_accuracy": tda,
        "ci95": ci95,
        "pairs": len(set(pairs)),
        "ci_method": f"percentile bootstrap over pairs ({resamples} resamples): the labels of several human "
        "judges on one pair drawn together",
        "chance": chance,
        # The decision the report states: does the CI of LIMA's agreement measure clear the chance level?
        "separates": bool(scored) and low is not None and low > floor,
        "below_chance": bool(scored) and high is not None and high < floor,
        "verdicts": {v: preds.count(v) for v in VERDICTS},
        "position_consistency": position_consistency([j for _, j in scored]),
        "first_position_pick_pct": first_position_pick_pct([j for _, j in scored]),
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
