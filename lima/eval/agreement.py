"""``lima agreement``: how well predicted pairwise verdicts match gold labels, overall and per category.

Layer: adapters (lima's id-keyed label files) with the agreement reports over them (statistics from
:mod:`lima.eval.metrics`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import iter_jsonl_objects
from lima.eval.formats.autoj import read_autoj  # noqa: F401  (re-exported: the Auto-J reader lives there)
from lima.eval.metrics import agreement

_NORMAL = {"a": "A", "b": "B", "tie": "tie"}


def normalize_verdict(value: Any) -> str | None:
    return _NORMAL.get(str(value).strip().lower()) if value is not None else None


def read_labels(path: str | os.PathLike, field: str) -> dict[str, dict[str, Any]]:
    """``{id: {"verdict": A|B|tie, "category": ...}}`` from JSONL rows with ``id`` and ``field``."""
    path = Path(path)
    rows: dict[str, dict[str, Any]] = {}
    for lineno, obj in iter_jsonl_objects(path):
        if "id" not in obj or field not in obj:
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


_SWAP = {"A": "B", "B": "A", "tie": "tie"}


def check_line_counts(paths: dict[str, Path], rows: dict[str, dict[str, Any]]) -> None:
    counts = {name: len(r) for name, r in rows.items()}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{paths[name]} has {n}" for name, n in counts.items())
        raise LimaError(
            f"Auto-J files must have one line per test row (predictions carry no ids: line i predicts row i); {shown}"
        )


def two_order_report(
    pred: dict[str, dict[str, Any]], swapped: dict[str, dict[str, Any]], gold: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Auto-J's protocol over gold ids predicted in both orders. ``swapped`` verdicts are in swapped-order
    terms (A = the response shown first there, i.e. the original B) and are mapped back first.

    - ``agreement``: the original-order prediction equals the label (single-order agreement);
    - ``agreement_swapped``: the same for the swapped order;
    - ``agreement_both_orders``: both orders agree with each other and with the label (what Auto-J's
      leaderboard reports as pairwise agreement);
    - ``consistency``: both orders give the same verdict.
    All in %, rounded to 2 decimals as Auto-J's ``pairwise_eval.py`` prints them.
    """
    ids = [i for i in gold if i in pred and i in swapped]
    if not ids:
        raise LimaError("no gold id has a prediction in both orders")
    back = {i: _SWAP[swapped[i]["verdict"]] for i in ids}
    pct = lambda k: round(100 * k / len(ids), 2)  # noqa: E731
    return {
        "n_both_orders": len(ids),
        "agreement": pct(sum(pred[i]["verdict"] == gold[i]["verdict"] for i in ids)),
        "agreement_swapped": pct(sum(back[i] == gold[i]["verdict"] for i in ids)),
        "agreement_both_orders": pct(sum(pred[i]["verdict"] == back[i] == gold[i]["verdict"] for i in ids)),
        "consistency": pct(sum(pred[i]["verdict"] == back[i] for i in ids)),
    }
