"""Arena-Hard's score and interval as each arena-hard-auto version computes them (its ``show_result.py``).

Every judgment holds two games (orders) of one question against the baseline; each game gives battles scored
from model A's side (1 win, 0.5 tie, 0 loss), a strong verdict (``>>``) counted ``weight`` = 3 times.

- **v0.1** (``show_result.py`` before v2.0): a game without a verdict gets weight 0 and the other game of
  that question is kept. The score is the Bradley-Terry win rate against the baseline; with every battle
  against the one baseline, the BT fit's win rate is the mean over battles. The interval is 95%: the 2.5th
  and 97.5th percentiles of the BT ratings of 100 resamples of the battles, drawn from numpy's global
  generator as it seeds it (42) -> ``arena_hard_v01_ci95``.
- **v2.0**: a question with a null game is dropped whole; questions are scored per category, each against its
  category's baseline (:data:`V2_BASELINES`). The score is the **mean of 100 bootstrap means** (battles
  resampled) and the interval their 5th and 95th percentiles (90%) -> ``arena_hard_v2_ci90``. arena-hard-auto
  does not seed it, so its numbers move by a few tenths from run to run; lima seeds it with ``seed``.
  Judgments of several categories together (one ``lima judge`` run) give ``arena_hard_by_category``.

Judgments without a version (lima's own five-level judges of before #20) keep lima's earlier keys:
``arena_hard_score`` (the mean over battles) and ``arena_hard_ci90`` (:func:`lima.eval.metrics.arena_hard_score`).
Both anchor intervals resample battles as if independent (a ``>>`` is three battles; the two games of a question
are drawn apart), so they are too narrow. lima's own interval, ``arena_hard_ci95_questions``, resamples questions
(every battle of a question together; :func:`lima.eval.metrics.cluster_bootstrap_ci`) around the battle mean.

Layer: metrics. Imports the bottom layer and :mod:`lima.eval.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lima.eval.metrics import ARENA_LEVELS, arena_hard_score, cluster_bootstrap_ci

ROUNDS = 100  # show_result.py's --num-rounds (both versions)
V01_SEED = 42  # utils_math.py seeds numpy's global generator with it on import
# config/arena-hard-v2.0.yaml's judge settings (utils/judge_utils.py JUDGE_SETTINGS): each category's baseline
V2_BASELINES = {
    "hard_prompt": "o3-mini-2025-01-31",
    "coding": "o3-mini-2025-01-31",
    "math": "o3-mini-2025-01-31",
    "creative_writing": "gemini-2.0-flash-001",
    "arena-hard-v0.1": "gpt-4-0314",
}
V01_BASELINE = "gpt-4-0314"


def version_of(judgment: dict[str, Any]) -> str | None:
    """The Arena-Hard version a judgment was made (or imported) under, from its ``meta``."""
    return (judgment.get("meta") or {}).get("arena_hard_version")


def category_of(judgment: dict[str, Any]) -> str | None:
    return (judgment.get("meta") or {}).get("category")


def game_battles(order: dict[str, Any], weight: int = 3) -> list[float]:
    """Model A's score in each battle of one game; no battle for a game without a five-level verdict."""
    level = order.get("level")
    if level not in ARENA_LEVELS or order.get("order") not in ("AB", "BA"):
        return []
    first = 0.5 if "=" in level else (1.0 if level[0] == "A" else 0.0)  # the answer shown first
    score = first if order["order"] == "AB" else 1 - first
    return [score] * (weight if ">>" in level else 1)


def _games(judgment: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(game 1, game 2) as arena-hard-auto orders them: game 1 shows the baseline (model B) first."""
    by_order = {o.get("order"): o for o in judgment.get("orders") or []}
    if set(by_order) != {"AB", "BA"}:
        return None
    return by_order["BA"], by_order["AB"]


def _null(game: dict[str, Any]) -> bool:
    return game.get("level") not in ARENA_LEVELS


def version_battles(
    judgments: Sequence[dict[str, Any]], version: str, weight: int = 3
) -> tuple[list[float], list[str], int]:
    """A version's battles in its own order, each battle's question, and the number of null games.
    v0.1: per question game 1 then game 2, a null game weighs 0 and the other game counts; v2.0: game 2 then
    game 1, a question with a null game is dropped."""
    battles: list[float] = []
    questions: list[str] = []
    nulls = 0
    for judgment in judgments:
        games = _games(judgment)
        if games is None:
            continue
        null = sum(_null(g) for g in games)
        nulls += null
        if version == "2.0":
            if null:
                continue
            games = (games[1], games[0])
        scores = [score for game in games for score in game_battles(game, weight)]  # a null game: weight 0
        battles += scores
        questions += [str(judgment.get("prompt_id"))] * len(scores)
    return battles, questions, nulls


def _own_ci(battles: list[float], questions: list[str], resamples: int, seed: int) -> list[float]:
    """lima's own 95% interval of the battle mean: questions resampled whole (in %)."""
    low, high = cluster_bootstrap_ci(battles, questions, resamples, seed)
    return [round(100 * low, 2), round(100 * high, 2)]


def _rating(p: float) -> float:
    """A win rate against the baseline as a BT (Elo-scale) rating difference; the inverse of :func:`_win`."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return 400 * math.log10(p / (1 - p))


def _win(rating: float) -> float:
    return 1 / (1 + 10 ** (-rating / 400))


def arena_hard_v01(
    judgments: Sequence[dict[str, Any]], weight: int = 3, resamples: int = 1000, seed: int = 0
) -> dict[str, Any] | None:
    """v0.1's score and 95% interval (in %), as its ``show_result.py`` computes them for one model, and lima's
    own interval over questions."""
    battles, questions, nulls = version_battles(judgments, "0.1", weight)
    if not battles:
        return None
    data = np.asarray(battles)
    rng = np.random.RandomState(V01_SEED)  # the legacy generator that pandas' sample draws from
    ratings = [
        _rating(float(data[rng.choice(len(data), len(data), replace=True)].mean())) for _ in range(ROUNDS)
    ]
    low, high = (_win(float(np.percentile(ratings, q))) for q in (2.5, 97.5))
    return {
        "arena_hard_version": "0.1",
        "arena_hard_score": round(100 * float(data.mean()), 2),
        "arena_hard_v01_ci95": [round(100 * low, 2), round(100 * high, 2)],
        "arena_hard_ci95_questions": _own_ci(battles, questions, resamples, seed),
        "arena_hard_battles": len(battles),
        "arena_hard_null_games": nulls,
    }


def arena_hard_v2(
    judgments: Sequence[dict[str, Any]], weight: int = 3, resamples: int = 1000, seed: int = 0
) -> dict[str, Any] | None:
    """v2.0's score (the mean of the bootstrap means) and 90% interval (in %), for one model in one category,
    and lima's own interval over questions."""
    battles, questions, nulls = version_battles(judgments, "2.0", weight)
    if not battles:
        return None
    data = np.asarray(battles)
    rng = np.random.RandomState(seed)
    means = np.array([data[rng.choice(len(data), len(data), replace=True)].mean() for _ in range(ROUNDS)])
    low, high = np.percentile(means, [5, 95])
    categories = sorted({c for j in judgments if (c := category_of(j))})
    return {
        "arena_hard_version": "2.0",
        "arena_hard_category": categories[0] if len(categories) == 1 else categories or None,
        "arena_hard_score": round(100 * float(means.mean()), 2),
        "arena_hard_v2_ci90": [round(100 * float(low), 2), round(100 * float(high), 2)],
        "arena_hard_ci95_questions": _own_ci(battles, questions, resamples, seed),
        "arena_hard_battles": len(battles),
        "arena_hard_null_games": nulls,
    }


def arena_hard_keys(
    judgments: Sequence[dict[str, Any]], weight: int = 3, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The Arena-Hard keys of one model pair: the version's own when the judgments name one, else lima's
    earlier score over the judgments whose two orders both carry a five-level verdict ({} when none do)."""
    versions = {version_of(j) for j in judgments}
    if versions == {"0.1"}:
        return arena_hard_v01(judgments, weight, resamples, seed) or {}
    if versions == {"2.0"}:
        by_category: dict[str | None, list[dict[str, Any]]] = {}
        for j in judgments:
            by_category.setdefault(category_of(j), []).append(j)
        if len(by_category) > 1:  # each category has its own baseline: never one score over several
            return {
                "arena_hard_version": "2.0",
                "arena_hard_by_category": {
                    str(c): arena_hard_v2(rows, weight, resamples, seed) for c, rows in by_category.items()
                },
            }
        return arena_hard_v2(judgments, weight, resamples, seed) or {}
    ok = [j for j in judgments if j.get("verdict") is not None]
    return arena_hard_score(ok, weight, resamples, seed) or {}
