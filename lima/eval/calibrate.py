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
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.judge import PairItem

FORMATS = ("llmbar", "pandalm", "autoj", "mtbench")
_REQUIRED = {
    "llmbar": ("input", "output_1", "output_2", "label"),
    "pandalm": ("instruction", "response1", "response2", "annotator1", "annotator2", "annotator3"),
    "autoj": ("prompt", "response 1", "response 2", "label"),
    "mtbench": ("question_id", "model_a", "model_b", "winner", "conversation_a", "conversation_b"),
}


def _load_rows(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
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
            else:
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
        except (KeyError, ValueError, TypeError):
            raise LimaError(
                f"{path}: row {index + 1}: label/annotation value is not valid for --format {fmt}"
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


def run_calibration(
    config: Any, labels: Path, fmt: str, out_dir: Path, limit: int | None = None
) -> dict[str, Any]:
    """Judge every labelled pair (both orders); write predictions, gold, judgments and calibration.json."""
    from lima.core.io import atomic_open, write_json
    from lima.core.llm_client import LLMClient
    from lima.core.manifest import RunManifest
    from lima.eval.agreement import agreement_report
    from lima.eval.judge import PairwiseJudge

    items, skipped = read_labelled_pairs(labels, fmt)
    if limit is not None:
        items = items[:limit]
    out_dir = Path(out_dir)
    cache = Path(config.cache) if config.cache else out_dir / "judge_cache.sqlite"
    with RunManifest(out_dir, "calibrate", config, inputs=[labels], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            judgments = PairwiseJudge(config, client).judge(items, desc=f"calibrating on {Path(labels).name}")
            stats = client.stats.as_dict()
        ok = [(item, j) for item, j in zip(items, judgments, strict=True) if j["verdict"] is not None]
        pred = {item.id: {"verdict": j["verdict"], "category": item.meta.get("category")} for item, j in ok}
        gold = {
            item.id: {"verdict": item.meta["gold"], "category": item.meta.get("category")} for item in items
        }
        report = agreement_report(pred, gold)
        result = {
            "agreement": report,
            "n": report["n"],
            "errors": len(items) - len(ok),
            "accuracy": report["accuracy"],
            "tie_discounted_accuracy": report["tie_discounted_accuracy"],
            "position_consistency": round(100 * sum(j["consistent"] for _, j in ok) / len(ok), 2)
            if ok
            else None,
            "longer_wins_pct_judge": _longer_wins_pct([i for i, _ in ok], [j["verdict"] for _, j in ok]),
            "longer_wins_pct_human": _longer_wins_pct(items, [i.meta["gold"] for i in items]),
            "skipped_rows": skipped,
            "format": fmt,
            "client": stats,
        }
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
