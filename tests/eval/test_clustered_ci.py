"""Intervals that respect the data's structure: the turns of one question, and the labels of several human
judges on one pair, are resampled together, never as if they were independent items."""

from __future__ import annotations

import numpy as np

from lima.eval.calibration import calibration_block
from lima.eval.metrics import bootstrap_ci, cluster_bootstrap_ci
from lima.eval.records import PairItem
from lima.eval.summary import summarize_judgments

VERDICTS = ["A", "B", "tie", "A", "A", "B", "A", "tie", "B", "A", "A", "B"] * 3


def test_singleton_clusters_are_the_item_bootstrap():
    values = np.random.default_rng(1).random(50)
    assert cluster_bootstrap_ci(values, list(range(50)), 500, 3) == bootstrap_ci(values, 500, 3)
    assert cluster_bootstrap_ci(values, None, 500, 3) == bootstrap_ci(values, 500, 3)


def test_a_copied_item_adds_no_information():
    values = np.random.default_rng(2).integers(0, 2, 40).astype(float)
    doubled = np.repeat(values, 2)
    clusters = np.repeat(np.arange(40), 2).tolist()
    assert cluster_bootstrap_ci(doubled, clusters, 1000, 0) == bootstrap_ci(values, 1000, 0)
    low, high = bootstrap_ci(doubled, 1000, 0)  # the naive interval is about 1/sqrt(2) as wide
    assert high - low < 0.8 * (np.subtract(*bootstrap_ci(values, 1000, 0)[::-1]))


def _judgment(prompt_id: str, verdict: str) -> dict:
    return {"prompt_id": prompt_id, "verdict": verdict, "orders": []}


def test_win_rate_ci_resamples_questions_with_all_their_turns():
    one_turn = [_judgment(str(81 + i), v) for i, v in enumerate(VERDICTS)]
    two_turns = one_turn + [_judgment(f"{81 + i}:turn2", v) for i, v in enumerate(VERDICTS)]
    single, both = summarize_judgments(one_turn), summarize_judgments(two_turns)
    assert both["n"] == 2 * single["n"] and both["questions"] == single["questions"] == len(VERDICTS)
    assert both["win_rate"] == single["win_rate"]
    # The second turn repeats the first here, so it adds nothing: the interval must not narrow.
    assert both["ci95"] == single["ci95"]
    assert "over questions" in both["ci_method"]


def test_calibration_ci_resamples_pairs_with_all_their_labels():
    rng = np.random.default_rng(4)
    items, judgments = [], []
    for k in range(30):
        gold = ["A", "B", "tie"][rng.integers(0, 3)]
        verdict = gold if rng.random() < 0.6 else "A"
        items.append(PairItem(str(k), f"question {k}", f"answer a{k}", f"answer b{k}", {"gold": gold}))
        judgments.append({"verdict": verdict, "orders": []})
    once = calibration_block(items, judgments, 1000, 0)
    # Three human judges gave the same label to each pair (MT-Bench's human judgments have several per pair).
    thrice = calibration_block(
        [PairItem(f"{i.id}-{j}", i.prompt, i.answer_a, i.answer_b, i.meta) for i in items for j in range(3)],
        [j for j in judgments for _ in range(3)],
        1000,
        0,
    )
    assert thrice["accuracy"] == once["accuracy"] and thrice["pairs"] == once["pairs"] == 30
    assert thrice["ci95"] == once["ci95"]
