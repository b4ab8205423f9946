"""AlpacaEval's protocol: one turn, lima's generation and judging as they are (its files are read by
:mod:`lima.eval.formats.alpaca_eval`). Issue #20 puts AlpacaEval's own annotator here.

Each judged pair keeps AlpacaEval's instruction ``index`` (``meta.alpaca_eval_index``: the row of a leaderboard
model's ``model_outputs.json``, which ``lima import`` records), so that ``lima summarize --alpaca-eval-gamed``
can match the judgments to AlpacaEval's instruction difficulty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lima.eval.formats.alpaca_eval import NAME
from lima.eval.protocols import Protocol


def pair_meta(record_a: dict[str, Any], record_b: dict[str, Any]) -> dict[str, Any]:
    """The baseline's index first: AlpacaEval numbers its annotations in its reference outputs' order."""
    for record in (record_b, record_a):
        index = (record.get("meta") or {}).get("alpaca_eval_index")
        if isinstance(index, int) and not isinstance(index, bool):
            return {"alpaca_eval_index": index}
    return {}


def owns_records(records: Sequence[dict[str, Any]]) -> bool:
    """lima generations of AlpacaEval's instructions (ids ``alpaca_eval-<sha1>``; e.g. ``lima run``'s copy of a
    leaderboard baseline)."""
    return any(str(r.get("prompt_id", "")).startswith(f"{NAME}-") for r in records)


PROTOCOL = Protocol(NAME, pair_meta=pair_meta, owns_records=owns_records)
