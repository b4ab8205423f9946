"""Every statistic of the evaluation stage, in one place: win rates, standard errors and bootstrap CIs, the
two orders combined, position consistency and first-position picks, tie-discounted credit and chance levels,
the length-adjusted win rate, Arena-Hard's score, and agreement (kappa) with human labels.

Layer: metrics. Imports only ``lima.core`` and the bottom layer (``lima.eval.parsers``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from lima.eval.parsers import VERDICTS

# A verdict from model A's point of view as a score: win 1, tie 0.5, loss 0.
SCORE = {"A": 1.0, "tie": 0.5, "B": 0.0}


def bootstrap_ci(values: Sequence[float], resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% CI of the mean, resampling items (prompts) with replacement."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def cluster_bootstrap_ci(
    values: Sequence[float],
    clusters: Sequence[Any] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile 95% CI of the mean of ``values``, resampling whole clusters with replacement: the items of
    one cluster (the turns of one question, the labels of one pair by several human judges) are correlated,
    so they are drawn together and the interval does not shrink as if they were independent. Each resample's
    statistic is the mean over the items of its clusters. Without clusters, or when every item is its own
    cluster, this is :func:`bootstrap_ci` to the last digit."""
    if clusters is None or len(set(clusters)) == len(clusters):
        return bootstrap_ci(values, resamples, seed)
    data = np.asarray(values, dtype=float)
    index = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    member = np.asarray([index[c] for c in clusters])
    sums = np.bincount(member, weights=data, minlength=len(index))
    counts = np.bincount(member, minlength=len(index)).astype(float)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(index), size=(resamples, len(index)))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def length_adjusted_win_rate(
    scores: Sequence[float], len_a: Sequence[float], len_b: Sequence[float], l2: float = 1.0
) -> float:
    """A length-adjusted win rate (in [0, 1]), after AlpacaEval 2's idea but not its GLM (that one, the
    leaderboard's "length-controlled win rate", also conditions on the instruction and the baseline; see #20).

    Fits ``P(A wins) = sigmoid(theta + beta * tanh(d / std(d)))`` with ``d = len_a - len_b`` to the soft
    outcomes (ties = 0.5) by Newton's method, with an L2 penalty on beta (and a tiny one on theta so that a
    clean sweep stays finite), then reports ``sigmoid(theta)``: the win rate were both answers equally long.
    """
    y = np.asarray(scores, dtype=float)
    if len(y) == 0:
        return math.nan
    diff = np.asarray(len_a, dtype=float) - np.asarray(len_b, dtype=float)
    std = diff.std()
    x = np.tanh(diff / std) if std > 0 else np.zeros_like(diff)
    features = np.stack([np.ones_like(x), x], axis=1)
    penalty = np.diag([1e-3, l2])
    w = np.zeros(2)
    for _ in range(100):
        p = 1 / (1 + np.exp(-(features @ w)))
        grad = features.T @ (p - y) + penalty @ w
        hess = (features * (p * (1 - p))[:, None]).T @ features + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(1 / (1 + math.exp(-w[0])))


def outcome_summary(
    verdicts: Sequence[str], resamples: int = 1000, seed: int = 0, clusters: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Win/tie/loss percentages (model A's view), win rate with ties as half, and its bootstrap CI
    (over ``clusters`` where given: the question of each verdict)."""
    n = len(verdicts)
    counts = Counter(verdicts)
    scores = [SCORE[v] for v in verdicts]
    if not n:  # None, not NaN: summaries are JSON
        return {
            "n": 0,
            "wins": 0,
            "ties": 0,
            "losses": 0,
            "win_pct": None,
            "tie_pct": None,
            "loss_pct": None,
            "win_rate": None,
            "ci95": [None, None],
        }
    pct = lambda k: round(100 * counts[k] / n, 2)  # noqa: E731
    low, high = cluster_bootstrap_ci(scores, clusters, resamples, seed)
    return {
        "n": n,
        "wins": counts["A"],
        "ties": counts["tie"],
        "losses": counts["B"],
        "win_pct": pct("A"),
        "tie_pct": pct("tie"),
        "loss_pct": pct("B"),
        # unrounded: it is AlpacaEval's discrete_win_rate and FastChat's win_rate_adjusted, to the last digit
        "win_rate": 100 * float(np.mean(scores)),
        "ci95": [round(100 * low, 2), round(100 * high, 2)],
    }


def agreement(pred: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    """Agreement of predicted with gold verdicts (each A, B or tie).

    - accuracy: exact match;
    - tie_discounted_accuracy (LIMA): 1 when both agree, 0.5 when exactly one says tie, 0 otherwise;
    - accuracy_without_ties: exact match over items where neither side says tie;
    - cohen_kappa: chance-corrected agreement over the three labels.
    """
    n = len(pred)
    if n == 0:
        return {
            "n": 0,
            "accuracy": None,
            "tie_discounted_accuracy": None,
            "accuracy_without_ties": None,
            "n_without_ties": 0,
            "cohen_kappa": None,
        }
    exact = [p == g for p, g in zip(pred, gold, strict=True)]
    discounted = [tie_discounted(p, g) for p, g in zip(pred, gold, strict=True)]
    decisive = [(p == g) for p, g in zip(pred, gold, strict=True) if p != "tie" and g != "tie"]
    observed = sum(exact) / n
    pred_counts, gold_counts = Counter(pred), Counter(gold)
    expected = sum(pred_counts[k] * gold_counts[k] for k in ("A", "B", "tie")) / (n * n)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else (1.0 if observed == 1 else 0.0)
    return {
        "n": n,
        "accuracy": round(observed, 4),
        "tie_discounted_accuracy": round(sum(discounted) / n, 4),
        "accuracy_without_ties": round(sum(decisive) / len(decisive), 4) if decisive else None,
        "n_without_ties": len(decisive),
        "cohen_kappa": round(kappa, 4),
    }


length_controlled_win_rate = length_adjusted_win_rate  # the old name, kept importable


def standard_error(scores: Sequence[float]) -> float | None:
    """100 × sample standard deviation / √n (pandas' ``sem``, as AlpacaEval's leaderboard computes it)."""
    if len(scores) < 2:
        return None
    return 100 * float(np.std(np.asarray(scores, dtype=float), ddof=1)) / math.sqrt(len(scores))


def outcome_keys(
    verdicts: Sequence[str],
    preferences: Sequence[float] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The shared summary keys for verdicts (A, B or tie, from A's side) and, if soft, P(A better) per item.
    The CIs resample ``clusters`` (questions) whole; the standard errors are per item, as AlpacaEval's are."""
    summary = outcome_summary(verdicts, resamples, seed, clusters)
    summary["standard_error"] = standard_error([SCORE[v] for v in verdicts])
    summary["soft_win_rate"] = summary["soft_standard_error"] = None
    summary["soft_ci95"] = [None, None]
    if preferences:
        low, high = cluster_bootstrap_ci(preferences, clusters, resamples, seed)
        summary.update(
            soft_win_rate=100 * float(np.mean(preferences)),
            soft_standard_error=standard_error(preferences),
            soft_ci95=[round(100 * low, 2), round(100 * high, 2)],
        )
    return summary


# --- the two orders of a pair -------------------------------------------------------------------------


def combine(first: str, second: str, mode: str = "strict") -> str:
    """Merge the model-space verdicts of the two orders. strict: agree -> it, else tie;
    lenient: also a win in one order and a tie in the other -> that win."""
    if first == second:
        return first
    if mode == "lenient" and "tie" in (first, second):
        return first if second == "tie" else second
    return "tie"


def position_consistency(judgments: Sequence[dict[str, Any]]) -> float | None:
    """% of judged pairs whose two orders gave the same verdict (pairs without that information left out)."""
    consistent = [j["consistent"] for j in judgments if j.get("consistent") is not None]
    return round(100 * sum(consistent) / len(consistent), 2) if consistent else None


def first_position_pick_pct(judgments: Sequence[dict[str, Any]]) -> float | None:
    """Among decisive per-order verdicts, how often the answer shown first won (%): 50 for no position bias."""
    decisive = [
        o for j in judgments for o in j.get("orders") or [] if o.get("positional") not in (None, "tie")
    ]
    if not decisive:
        return None
    return round(100 * sum(o["positional"] == "A" for o in decisive) / len(decisive), 2)


# --- agreement with human labels ------------------------------------------------------------------------


def tie_discounted(pred: str, gold: str) -> float:
    """LIMA's per-item credit: 1 when both agree, 0.5 when exactly one says tie, 0 otherwise."""
    return 1.0 if pred == gold else 0.5 if (pred == "tie") != (gold == "tie") else 0.0


def chance_levels(golds: Sequence[str]) -> dict[str, float | None]:
    """The best score an answer-blind judge can reach on these gold labels: one constant verdict for every
    pair. "Always tie" is also what a judge that always picks the first position gets once its two orders are
    combined, so this is the floor that a position-biased judge reaches without reading a word."""
    if not golds:
        return {"accuracy": None, "tie_discounted_accuracy": None}
    n = len(golds)
    return {
        "accuracy": round(max(golds.count(v) for v in VERDICTS) / n, 4),
        "tie_discounted_accuracy": round(
            max(sum(tie_discounted(v, g) for g in golds) for v in VERDICTS) / n, 4
        ),
    }


# --- Arena-Hard ---------------------------------------------------------------------------------------

ARENA_LEVELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")


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
    """arena-hard-auto's score against the baseline, with a percentile 90% bootstrap interval over battles."""
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
