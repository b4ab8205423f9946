"""The one summarizer of judgments — ``lima judge``'s, and ``lima summarize`` on any judgment file, lima's own or
one imported by ``lima import`` — from model A's side: the same keys either way.

Keys (``outcome_keys``, also written by ``lima judge``): ``n`` (judgments with a verdict), ``wins``, ``ties``,
``losses``, ``win_rate`` (ties count half, in %), ``standard_error`` (100 × sample stdev / √n of the per-item
scores 1 / 0.5 / 0, AlpacaEval's own), ``ci95`` (percentile bootstrap over ``questions``: a pair with both its
orders, and every turn of an MT-Bench question, drawn together; ``ci_method`` says so); when the judgments carry
soft preferences (P(A better), AlpacaEval's weighted annotators, logprob judges) also ``soft_win_rate`` = 100 ×
mean preference with ``soft_standard_error`` and ``soft_ci95``. An AlpacaEval leaderboard row's ``win_rate`` /
``standard_error`` are ``soft_win_rate`` / ``soft_standard_error`` here, its ``discrete_win_rate`` is
``win_rate``, its ``n_wins`` / ``n_wins_base`` / ``n_draws`` are ``wins`` / ``losses`` / ``ties``.

With five-level verdicts in both orders (Arena-Hard) it adds ``arena_hard_score``: arena-hard-auto's score
against the baseline, each order one battle scored 1 / 0.5 / 0 from A's side, a strong verdict (``>>``)
counted ``weight`` = 3 times, the mean over battles in %, with a percentile 90% bootstrap interval over battles
(``arena_hard_ci90``; arena-hard-auto reports the 5th and 95th percentiles of 100 unseeded resamples, so its
interval moves by a few tenths from run to run; the score itself does not).

Also: ``prompts``, ``errors``, ``error_orders``, ``position_consistency``, ``first_position_pick_pct``,
``mean_len_a`` / ``mean_len_b`` and ``length_adjusted_win_rate`` (:func:`lima.eval.metrics.length_adjusted_win_rate`;
None where the file carries no answer texts).

Layer: metrics (over judgment records); the statistics themselves live in :mod:`lima.eval.metrics`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import iter_jsonl_objects
from lima.eval.metrics import (
    ARENA_LEVELS,
    SCORE,
    arena_hard_battles,
    arena_hard_score,
    first_position_pick_pct,
    length_adjusted_win_rate,
    outcome_keys,
    position_consistency,
    standard_error,
)
from lima.eval.records import question_of

__all__ = ["ARENA_LEVELS", "arena_hard_battles", "arena_hard_score", "outcome_keys", "standard_error"]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _length_adjusted(ok: Sequence[dict[str, Any]]) -> float | None:
    lengths = [(j.get("len_a"), j.get("len_b")) for j in ok]
    if not ok or any(a is None or b is None for a, b in lengths) or not any(a or b for a, b in lengths):
        return None  # no answer texts (e.g. imported judgments that carry none): nothing to adjust for
    rate = length_adjusted_win_rate(
        [SCORE[j["verdict"]] for j in ok], [a for a, _ in lengths], [b for _, b in lengths]
    )
    return round(100 * rate, 2)


def summarize_judgments(
    judgments: Sequence[dict[str, Any]], resamples: int = 1000, seed: int = 0, soft: bool | None = None
) -> dict[str, Any]:
    """The summary keys of one model pair. ``soft``: whether the preferences are a soft judge's probabilities
    (``lima judge`` knows its judge); None reads them whenever every judged pair has one."""
    ok = [j for j in judgments if j.get("verdict") is not None]
    prefs = [j["preference"] for j in ok if j.get("preference") is not None]
    complete = bool(prefs) and len(prefs) == len(ok)
    questions = [question_of(j) for j in ok]  # the turns of one question are resampled together
    summary = outcome_keys(
        [j["verdict"] for j in ok],
        prefs if complete and soft is not False else None,
        resamples,
        seed,
        clusters=questions,
    )
    summary["questions"] = len(set(questions))
    summary["ci_method"] = (
        f"percentile bootstrap over questions ({resamples} resamples): a pair with both its orders, and every "
        "turn of a question, drawn together"
    )
    summary.update(arena_hard_score(ok, resamples=resamples, seed=seed) or {})
    summary.update(
        prompts=len(judgments),
        errors=len(judgments) - len(ok),
        error_orders=sum(o.get("verdict") is None for j in judgments for o in j.get("orders") or []),
        position_consistency=position_consistency(ok),
        first_position_pick_pct=first_position_pick_pct(ok),
        mean_len_a=_mean([j["len_a"] for j in judgments if j.get("len_a") is not None]),
        mean_len_b=_mean([j["len_b"] for j in judgments if j.get("len_b") is not None]),
        length_adjusted_win_rate=_length_adjusted(ok),
    )
    return summary


def _flip(judgment: dict[str, Any]) -> dict[str, Any]:
    """The same judgment from B's side (the baseline named by ``--baseline`` goes to position B)."""
    swap = {"A": "B", "B": "A", "tie": "tie", None: None}
    flipped = {
        **judgment,
        "model_a": judgment.get("model_b"),
        "model_b": judgment.get("model_a"),
        "output_a": judgment.get("output_b"),
        "output_b": judgment.get("output_a"),
        "len_a": judgment.get("len_b"),
        "len_b": judgment.get("len_a"),
        "verdict": swap[judgment.get("verdict")],
    }
    if judgment.get("preference") is not None:
        flipped["preference"] = 1 - judgment["preference"]
    flipped["orders"] = [
        {
            **o,
            "verdict": swap[o.get("verdict")],
            "order": {"AB": "BA", "BA": "AB"}.get(o.get("order"), o.get("order")),
        }
        for o in judgment.get("orders") or []
    ]
    return flipped


def read_judgments(path: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(path)
    rows = []
    for lineno, obj in iter_jsonl_objects(path, "judgments file"):
        if "verdict" not in obj:
            raise LimaError(
                f"{path}:{lineno}: expected a judgment with 'verdict' (A, B, tie or null); "
                "convert other tools' files with `lima import`"
            )
        if obj["verdict"] not in ("A", "B", "tie", None):
            raise LimaError(f"{path}:{lineno}: verdict: {obj['verdict']!r} is not one of A, B, tie, null")
        pref = obj.get("preference")
        if pref is not None and not (isinstance(pref, int | float) and 0 <= pref <= 1):
            raise LimaError(f"{path}:{lineno}: preference: {pref!r} is not a number in [0, 1]")
        rows.append(obj)
    if not rows:
        raise LimaError(f"{path}: no judgments")
    return rows


def summarize_file(
    path: str | os.PathLike, baseline: str | None = None, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """One summary per (model A, model B) pair in the file. With ``baseline``, only judgments involving that
    model count, oriented so that it is model B (FastChat's ``--mode pairwise-baseline``)."""
    judgments = read_judgments(path)
    if baseline is not None:
        judgments = [
            _flip(j) if j.get("model_a") == baseline else j
            for j in judgments
            if baseline in (j.get("model_a"), j.get("model_b"))
        ]
        if not judgments:
            raise LimaError(f"{path}: no judgment involves --baseline {baseline!r}")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for j in judgments:
        groups.setdefault((str(j.get("model_a") or "A"), str(j.get("model_b") or "B")), []).append(j)
    pairs = [
        {"model_a": a, "model_b": b, **summarize_judgments(rows, resamples, seed)}
        for (a, b), rows in groups.items()
    ]
    return pairs[0] if len(pairs) == 1 else {"pairs": sorted(pairs, key=lambda p: -(p["win_rate"] or 0))}
