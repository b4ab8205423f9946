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

Arena-Hard (:mod:`lima.eval.arena_hard_stats`): judgments made or imported under an Arena-Hard version
(``meta.arena_hard_version``) get that version's ``arena_hard_score`` and the interval its ``show_result.py``
reports: ``arena_hard_v01_ci95`` (v0.1: Bradley-Terry win rate against the baseline, a null game weighted 0
and the other game of its question kept, 95% over 100 resamples of battles) or ``arena_hard_v2_ci90`` (v2.0:
the mean of 100 bootstrap means, 90%, a question with a null game dropped, one summary per category since each
category has its own baseline), with ``arena_hard_battles`` and ``arena_hard_null_games``. Other five-level
judgments (both orders with a verdict) keep lima's earlier ``arena_hard_score`` (the mean over battles, a
strong verdict counted 3 times) with ``arena_hard_ci90`` (lima's percentile 90% bootstrap over battles).
These anchor intervals resample battles; lima's own, ``arena_hard_ci95_questions``, resamples questions.

Also: ``prompts``, ``errors``, ``error_orders``, ``position_consistency``, ``first_position_pick_pct``,
``mean_len_a`` / ``mean_len_b`` and ``length_adjusted_win_rate`` (:func:`lima.eval.metrics.length_adjusted_win_rate`,
lima's own adjustment, fitted to the soft preferences when ``soft_win_rate`` is reported, to the verdicts
otherwise; None where the file carries no answer texts). ``lima summarize`` given AlpacaEval's files adds
AlpacaEval 2's own ``alpaca_eval_lc_win_rate`` (:func:`alpaca_eval_lc`).

Layer: metrics (over judgment records); the statistics themselves live in :mod:`lima.eval.metrics`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import iter_jsonl_objects
from lima.eval.alpaca_eval_lc import GamedBaseline, alpaca_eval_lc_win_rate
from lima.eval.arena_hard_stats import arena_hard_keys, category_of, version_of
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


def _length_adjusted(ok: Sequence[dict[str, Any]], prefs: Sequence[float] | None) -> float | None:
    """lima's own length adjustment, fitted to the soft preferences where every judgment has one (a soft judge,
    AlpacaEval's weighted annotators), to the verdicts (1 / 0.5 / 0) otherwise."""
    lengths = [(j.get("len_a"), j.get("len_b")) for j in ok]
    if not ok or any(a is None or b is None for a, b in lengths) or not any(a or b for a, b in lengths):
        return None  # no answer texts (e.g. imported judgments that carry none): nothing to adjust for
    outcomes = list(prefs) if prefs is not None else [SCORE[j["verdict"]] for j in ok]
    rate = length_adjusted_win_rate(outcomes, [a for a, _ in lengths], [b for _, b in lengths])
    return round(100 * rate, 2)


def summarize_judgments(
    judgments: Sequence[dict[str, Any]], resamples: int = 1000, seed: int = 0, soft: bool | None = None
) -> dict[str, Any]:
    """The summary keys of one model pair. ``soft``: whether the preferences are a soft judge's probabilities
    (``lima judge`` knows its judge); None reads them whenever every judged pair has one."""
    ok = [j for j in judgments if j.get("verdict") is not None]
    prefs = [j["preference"] for j in ok if j.get("preference") is not None]
    complete = bool(prefs) and len(prefs) == len(ok)
    soft_prefs = prefs if complete and soft is not False else None
    questions = [question_of(j) for j in ok]  # the turns of one question are resampled together
    summary = outcome_keys([j["verdict"] for j in ok], soft_prefs, resamples, seed, clusters=questions)
    summary["questions"] = len(set(questions))
    summary["ci_method"] = (
        f"percentile bootstrap over questions ({resamples} resamples): a pair with both its orders, and every "
        "turn of a question, drawn together"
    )
    # every judgment: arena-hard-auto v0.1 keeps the other game of a question with a null game
    summary.update(arena_hard_keys(judgments, resamples=resamples, seed=seed))
    summary.update(
        prompts=len(judgments),
        errors=len(judgments) - len(ok),
        error_orders=sum(o.get("verdict") is None for j in judgments for o in j.get("orders") or []),
        position_consistency=position_consistency(ok),
        first_position_pick_pct=first_position_pick_pct(ok),
        mean_len_a=_mean([j["len_a"] for j in judgments if j.get("len_a") is not None]),
        mean_len_b=_mean([j["len_b"] for j in judgments if j.get("len_b") is not None]),
        length_adjusted_win_rate=_length_adjusted(ok, soft_prefs),
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


def alpaca_eval_lc(
    judgments: Sequence[dict[str, Any]],
    where: str,
    difficulty: dict[int, float] | None = None,
    gamed: GamedBaseline | None = None,
) -> dict[str, Any]:
    """AlpacaEval 2's LC win rate of model A (:mod:`lima.eval.alpaca_eval_lc`) over one pair's judgments.

    Each judgment is matched to its AlpacaEval instruction by ``meta.alpaca_eval_index`` (``lima import`` of an
    annotations file records the row's position, AlpacaEval's own ``index``), or else, when the judgments are
    as many as the instructions, by their position in the file (AlpacaEval's rule for its annotations). The
    soft preference is fitted where there is one, else the verdict as 1 / 0.5 / 0 (a discrete annotator's
    preference); a judgment without a verdict is a failed annotation (kept for the prediction, not fitted)."""
    lookup = gamed.difficulty if gamed is not None else difficulty or {}
    indices = [(j.get("meta") or {}).get("alpaca_eval_index") for j in judgments]
    if not all(isinstance(i, int) for i in indices):
        if len(judgments) != len(lookup):
            raise LimaError(
                f"{where}: cannot tell which AlpacaEval instruction each judgment is: they carry no "
                f"meta.alpaca_eval_index and are {len(judgments)}, not the {len(lookup)} instructions of the "
                "difficulty file in AlpacaEval's order; import AlpacaEval's annotations.json with `lima import`, "
                "or judge all of AlpacaEval's instructions in its order"
            )
        indices = list(range(len(judgments)))
    seen: dict[int, int] = {}
    for n, (index, j) in enumerate(zip(indices, judgments, strict=True), start=1):
        if index in seen:
            raise LimaError(
                f"{where}: judgments {seen[index]} and {n} are both AlpacaEval instruction {index}; "
                "AlpacaEval's LC takes one annotation per instruction"
            )
        seen[index] = n
        if j.get("len_a") is None or j.get("len_b") is None:
            raise LimaError(f"{where}: judgment {n} ({j.get('prompt_id')}): no answer lengths (len_a, len_b)")
    prefs = [
        None
        if j.get("verdict") is None
        else j["preference"]
        if j.get("preference") is not None
        else SCORE[j["verdict"]]
        for j in judgments
    ]
    return alpaca_eval_lc_win_rate(
        prefs,
        [j["len_a"] for j in judgments],
        [j["len_b"] for j in judgments],
        indices,  # type: ignore[arg-type]
        difficulty,
        gamed,
    )


def summarize_file(
    path: str | os.PathLike,
    baseline: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    alpaca_eval_difficulty: dict[int, float] | None = None,
    alpaca_eval_gamed: GamedBaseline | None = None,
) -> dict[str, Any]:
    """One summary per (model A, model B) pair in the file. With ``baseline``, only judgments involving that
    model count, oriented so that it is model B (FastChat's ``--mode pairwise-baseline``). With AlpacaEval's
    difficulty and/or gamed-baseline files, each pair also gets AlpacaEval 2's LC win rate (:func:`alpaca_eval_lc`)."""
    judgments = read_judgments(path)
    if baseline is not None:
        judgments = [
            _flip(j) if j.get("model_a") == baseline else j
            for j in judgments
            if baseline in (j.get("model_a"), j.get("model_b"))
        ]
        if not judgments:
            raise LimaError(f"{path}: no judgment involves --baseline {baseline!r}")
    groups: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
    for j in judgments:
        # Arena-Hard v2 scores each category against its own baseline: one summary per category
        category = category_of(j) if version_of(j) == "2.0" else None
        groups.setdefault((str(j.get("model_a") or "A"), str(j.get("model_b") or "B"), category), []).append(
            j
        )
    pairs = []
    for (a, b, c), rows in groups.items():
        pair = {
            "model_a": a,
            "model_b": b,
            **({"category": c} if c else {}),
            **summarize_judgments(rows, resamples, seed),
        }
        if alpaca_eval_difficulty is not None or alpaca_eval_gamed is not None:
            where = f"{path} ({a} vs {b})" if len(groups) > 1 else str(path)
            pair.update(alpaca_eval_lc(rows, where, alpaca_eval_difficulty, alpaca_eval_gamed))
        pairs.append(pair)
    return pairs[0] if len(pairs) == 1 else {"pairs": sorted(pairs, key=lambda p: -(p["win_rate"] or 0))}
