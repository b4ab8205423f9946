"""The summary of a judgment file — ``lima judge``'s own or one imported by ``lima import`` — from model A's side.

Keys (``outcome_keys``, also written by ``lima judge``): ``n`` (judgments with a verdict), ``wins``, ``ties``,
``losses``, ``win_rate`` (ties count half, in %), ``standard_error`` (100 × sample stdev / √n of the per-item
scores 1 / 0.5 / 0), ``ci95`` (bootstrap over items); when the judgments carry soft preferences (P(A better),
AlpacaEval's weighted annotators, logprob judges) also ``soft_win_rate`` = 100 × mean preference with
``soft_standard_error`` and ``soft_ci95``. An AlpacaEval leaderboard row's ``win_rate`` / ``standard_error``
are ``soft_win_rate`` / ``soft_standard_error`` here, its ``discrete_win_rate`` is ``win_rate``, its
``n_wins`` / ``n_wins_base`` / ``n_draws`` are ``wins`` / ``losses`` / ``ties``.

With five-level verdicts in both orders (Arena-Hard) it adds ``arena_hard_score``: arena-hard-auto's score
against the baseline, each order one battle scored 1 / 0.5 / 0 from A's side, a strong verdict (``>>``)
counted ``weight`` = 3 times, the mean over battles in %, with a percentile 90% bootstrap interval over battles
(``arena_hard_ci90``; arena-hard-auto reports the 5th and 95th percentiles of 100 unseeded resamples, so its
interval moves by a few tenths from run to run; the score itself does not).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lima.core.errors import LimaError
from lima.core.io import iter_jsonl_objects
from lima.eval.stats import SCORE, bootstrap_ci, outcome_summary

ARENA_LEVELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")


def standard_error(scores: Sequence[float]) -> float | None:
    """100 × sample standard deviation / √n (pandas' ``sem``, as AlpacaEval's leaderboard computes it)."""
    if len(scores) < 2:
        return None
    return 100 * float(np.std(np.asarray(scores, dtype=float), ddof=1)) / math.sqrt(len(scores))


def outcome_keys(
    verdicts: Sequence[str], preferences: Sequence[float] | None = None, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The shared summary keys for verdicts (A, B or tie, from A's side) and, if soft, P(A better) per item."""
    summary = outcome_summary(verdicts, resamples, seed)
    summary["standard_error"] = standard_error([SCORE[v] for v in verdicts])
    summary["soft_win_rate"] = summary["soft_standard_error"] = None
    summary["soft_ci95"] = [None, None]
    if preferences:
        low, high = bootstrap_ci(preferences, resamples, seed)
        summary.update(
            soft_win_rate=100 * float(np.mean(preferences)),
            soft_standard_error=standard_error(preferences),
            soft_ci95=[round(100 * low, 2), round(100 * high, 2)],
        )
    return summary


def arena_hard_battles(judgment: dict[str, Any], weight: int = 3) -> list[float] | None:
    """A's outcome in every battle of one judgment (None unless both orders carry a five-level verdict)."""
    orders = judgment.get("orders") or []
    if len(orders) != 2:
        return None
    battles: list[float] = []
    for order in orders:
        level = order.get("level")
        if level not in ARENA_LEVELS or order.get("order") not in ("AB", "BA"):
            return None
        first = {"A": 1.0, "B": 0.0}.get(level[0], 0.5) if "=" not in level else 0.5  # the answer shown first
        score = first if order["order"] == "AB" else 1 - first
        battles += [score] * (weight if ">>" in level else 1)
    return battles


def arena_hard_score(
    judgments: Sequence[dict[str, Any]], weight: int = 3, resamples: int = 1000, seed: int = 0
) -> dict[str, Any] | None:
    battles = []
    for j in judgments:
        scores = arena_hard_battles(j, weight)
        if scores is None:
            return None
        battles += scores
    if not battles:
        return None
    rng = np.random.default_rng(seed)
    data = np.asarray(battles)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [5, 95])
    return {
        "arena_hard_score": round(100 * float(data.mean()), 2),
        "arena_hard_ci90": [round(100 * float(low), 2), round(100 * float(high), 2)],
        "arena_hard_battles": len(battles),
    }


def summarize_judgments(
    judgments: Sequence[dict[str, Any]], resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    ok = [j for j in judgments if j.get("verdict") is not None]
    prefs = [j["preference"] for j in ok if j.get("preference") is not None]
    summary = outcome_keys(
        [j["verdict"] for j in ok], prefs if len(prefs) == len(ok) else None, resamples, seed
    )
    summary["errors"] = len(judgments) - len(ok)
    consistent = [j["consistent"] for j in ok if j.get("consistent") is not None]
    if consistent:
        summary["position_consistency"] = round(100 * sum(consistent) / len(consistent), 2)
    arena = arena_hard_score(ok, resamples=resamples, seed=seed)
    if arena:
        summary.update(arena)
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
