"""``lima agreement``: how well predicted pairwise verdicts match gold labels, overall and per category."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.stats import agreement

_NORMAL = {"a": "A", "b": "B", "tie": "tie"}


def normalize_verdict(value: Any) -> str | None:
    return _NORMAL.get(str(value).strip().lower()) if value is not None else None


def read_labels(path: str | os.PathLike, field: str) -> dict[str, dict[str, Any]]:
    """``{id: {"verdict": A|B|tie, "category": ...}}`` from JSONL rows with ``id`` and ``field``."""
    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: file not found")
    rows: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LimaError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or "id" not in obj or field not in obj:
                raise LimaError(f"{path}:{lineno}: expected a JSON object with 'id' and '{field}'")
            verdict = normalize_verdict(obj[field])
            if verdict is None:
                raise LimaError(f"{path}:{lineno}: {field}: {obj[field]!r} is not one of A, B, tie")
            key = str(obj["id"])
            if key in rows:
                raise LimaError(f"{path}:{lineno}: duplicate id {key!r}")
            rows[key] = {"verdict": verdict, "category": obj.get("category")}
    if not rows:
        raise LimaError(f"{path}: no rows")
    return rows


def agreement_report(pred: dict[str, dict[str, Any]], gold: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Agreement over ids present in both; counts gold ids without a prediction; rows per gold category."""
    ids = [i for i in gold if i in pred]
    report = agreement([pred[i]["verdict"] for i in ids], [gold[i]["verdict"] for i in ids])
    report["missing_predictions"] = sum(1 for i in gold if i not in pred)
    report["unmatched_predictions"] = sum(1 for i in pred if i not in gold)
    categories: dict[str, list[str]] = {}
    for i in ids:
        category = gold[i].get("category") or pred[i].get("category")
        if category is not None:
            categories.setdefault(str(category), []).append(i)
    if categories:
        report["per_category"] = {
            name: agreement([pred[i]["verdict"] for i in members], [gold[i]["verdict"] for i in members])
            for name, members in sorted(categories.items())
        }
    return report
