"""Statistics for judge outcomes: win rates, bootstrap CIs, length control, agreement with humans."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

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


def length_controlled_win_rate(
    scores: Sequence[float], len_a: Sequence[float], len_b: Sequence[float], l2: float = 1.0
) -> float:
    """AlpacaEval-2-style length-controlled win rate (in [0, 1]).

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


def outcome_summary(verdicts: Sequence[str], resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Win/tie/loss percentages (model A's view), win rate with ties as half, and its bootstrap CI."""
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
    low, high = bootstrap_ci(scores, resamples, seed)
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
    tie_discounted = [
        1.0 if p == g else 0.5 if (p == "tie") != (g == "tie") else 0.0
        for p, g in zip(pred, gold, strict=True)
    ]
    decisive = [(p == g) for p, g in zip(pred, gold, strict=True) if p != "tie" and g != "tie"]
    observed = sum(exact) / n
    pred_counts, gold_counts = Counter(pred), Counter(gold)
    expected = sum(pred_counts[k] * gold_counts[k] for k in ("A", "B", "tie")) / (n * n)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else (1.0 if observed == 1 else 0.0)
    return {
        "n": n,
        "accuracy": round(observed, 4),
        "tie_discounted_accuracy": round(sum(tie_discounted) / n, 4),
        "accuracy_without_ties": round(sum(decisive) / len(decisive), 4) if decisive else None,
        "n_without_ties": len(decisive),
        "cohen_kappa": round(kappa, 4),
    }
