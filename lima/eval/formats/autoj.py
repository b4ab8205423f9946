"""Auto-J (GAIR-NLP/auto-j) pairwise files, JSONL.

- the test set ``data/test/testdata_pairwise.jsonl``: ``scenario``, ``label`` (0: response 1 better,
  1: response 2 better, 2: tie), ``prompt``, ``response 1``, ``response 2``;
- prediction files: one ``{"output": 0|1|2}`` per line and **no ids**: line i predicts test row i. The
  predictions on the exchanged-order data are in exchanged terms (0 means the response shown first there,
  i.e. the original response 2), as ``codes/leaderboard/pairwise_eval.py`` reads them.
"""

from __future__ import annotations

import os
from typing import Any

from lima.core.errors import LimaError
from lima.eval.formats.common import ImportResult, Row, load_rows, rest

NAME = "autoj"
LABELS = {0: "A", 1: "B", 2: "tie"}


def detect_kind(obj: dict[str, Any]) -> str | None:
    if "label" in obj and "response 1" in obj and "response 2" in obj:
        return "labels"
    if set(obj) == {"output"} or ("output" in obj and obj.get("output") in LABELS and len(obj) <= 2):
        return "predictions"
    return None


def _label(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    try:
        return LABELS.get(int(value))
    except (TypeError, ValueError):
        return None


def read_autoj(path: str | os.PathLike, field: str) -> dict[str, dict[str, Any]]:
    """Auto-J rows by line index for ``lima agreement``: the test set (``label`` 0/1/2, ``scenario``) or a
    prediction file (``{"output": 0|1|2}`` per line, no ids: line i predicts test row i)."""
    rows: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(load_rows(path)):
        obj = row.obj if isinstance(row.obj, dict) else {}
        value = obj.get(field)
        verdict = LABELS.get(value) if isinstance(value, int) and not isinstance(value, bool) else None
        if verdict is None:
            raise LimaError(f"{row.where}: {field}: {value!r} is not 0, 1 or 2 (Auto-J: first, second, tie)")
        rows[str(index)] = {"verdict": verdict, "category": obj.get("scenario")}
    if not rows:
        raise LimaError(f"{path}: no rows")
    return rows


def import_labels(rows: list[Row], result: ImportResult) -> None:
    """Gold labels for ``lima agreement``: ``id`` (the row index), ``label``, ``category`` (the scenario)."""
    for index, row in enumerate(rows):
        obj = row.obj if isinstance(row.obj, dict) else {}
        label = _label(obj.get("label"))
        if label is None:
            result.skip(row, "label is not 0, 1 or 2")
            continue
        result.lines.append(
            {
                "id": str(index),
                "label": label,
                "category": obj.get("scenario"),
                "prompt": obj.get("prompt"),
                "response_1": obj.get("response 1"),
                "response_2": obj.get("response 2"),
                "meta": rest(obj, ("label", "scenario", "prompt", "response 1", "response 2")),
            }
        )


def import_predictions(rows: list[Row], result: ImportResult) -> None:
    """Predictions for ``lima agreement``: ``id`` (the line index, matching the test row), ``verdict``."""
    for index, row in enumerate(rows):
        verdict = _label(row.obj.get("output") if isinstance(row.obj, dict) else None)
        if verdict is None:
            result.skip(row, "output is not 0, 1 or 2")
            continue
        result.lines.append({"id": str(index), "verdict": verdict})
