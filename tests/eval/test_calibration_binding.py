"""A win rate shows the calibration of the judge that made it, and no other: keyed by the judge and its labels
file, chosen by configuration (or named when chosen from the store), never "the newest stored"; a calibration
too small or one-sided is shown as such, not as a verdict on the judge."""

from __future__ import annotations

import json

import pytest

from lima.core.io import path_sha256
from lima.eval.calibrate import (
    calibration_block,
    calibration_note,
    calibration_problem,
    find_calibration,
    store_calibration,
)
from lima.eval.config import JudgeConfig
from lima.eval.records import PairItem


def _items(golds):
    return [PairItem(str(i), f"q{i}", "a" * (i % 5 + 1), "b" * 3, {"gold": g}) for i, g in enumerate(golds)]


def _judgments(verdicts):
    return [
        {
            "verdict": v,
            "consistent": True,
            "orders": [{"positional": v, "verdict": v}, {"positional": v, "verdict": v}],
        }
        for v in verdicts
    ]


def _block(path, golds, verdicts, when):
    block = calibration_block(_items(golds), _judgments(verdicts))
    block["labels"] = {
        "name": path.name,
        "path": str(path),
        "format": "lima",
        "sha256": path_sha256(path),
        "pairs": len(golds),
        "gold": {v: golds.count(v) for v in ("A", "B", "tie")},
    }
    block["calibrated_at"] = when
    return block


def test_the_issues_eight_all_b_pairs_are_not_a_verdict():
    """As measured on Auto-J: 8 pairs, every label B (chance 100%), the judge half right: it used to say
    "BELOW chance, this judge prefers the worse answer" with a 95% CI of 12–88%."""
    block = calibration_block(_items(["B"] * 8), _judgments(["B", "A"] * 4))
    block["labels"] = {"name": "autoj.jsonl", "gold": {"A": 0, "B": 8, "tie": 0}}
    note = calibration_note(block)
    assert "BELOW" not in note and "prefers the worse" not in note and "noise" not in note
    assert "too small" in note and not block["separates"] and not block["below_chance"]
    assert block["problem"] == calibration_problem(block)


def test_one_sided_labels_are_shown_as_such():
    golds = ["B"] * 38 + ["A"] * 2  # 95% one label: a constant "B" scores 95%
    block = calibration_block(_items(golds), _judgments(["A"] * 40))
    block["labels"] = {"name": "lopsided.jsonl", "gold": {"A": 2, "B": 38, "tie": 0}}
    note = calibration_note(block)
    assert "one-sided labels (95% of the gold labels are B" in note and "BELOW" not in note
    assert not block["below_chance"]


def test_below_chance_claims_no_direction_the_ci_does_not_hold():
    golds = ["A", "B"] * 20 + ["tie"] * 8
    wrong = {"A": "B", "B": "A", "tie": "A"}
    block = calibration_block(_items(golds), _judgments([wrong[g] for g in golds]))
    block["labels"] = {"name": "x.jsonl"}
    note = calibration_note(block)
    assert block["below_chance"] and "BELOW chance" in note and "prefers the worse answer" not in note


def test_a_run_shows_its_configured_calibration_or_names_the_one_it_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_CACHE_DIR", str(tmp_path / "cache"))
    config = JudgeConfig()
    balanced, small = tmp_path / "judge_pairs.jsonl", tmp_path / "autoj_8.jsonl"
    balanced.write_text("balanced\n")
    small.write_text("one-sided\n")
    golds = ["A", "B"] * 20 + ["tie"] * 8
    store_calibration(config, _block(balanced, golds, golds, "2026-12-01T10:00:00+00:00"))
    shown = find_calibration(config)
    assert shown["labels"]["name"] == "judge_pairs.jsonl"
    # another process calibrates the same judge later, on 8 one-sided pairs: the run still shows the first
    store_calibration(config, _block(small, ["B"] * 8, ["B", "A"] * 4, "2026-12-05T10:00:00+00:00"))
    again = find_calibration(config)
    assert again["labels"]["name"] == "judge_pairs.jsonl" and again["n"] == 48
    sha = path_sha256(balanced)[:12]
    assert f"judge_pairs.jsonl (sha256 {sha}, n=48, 2026-12-01)" in again["shown_because"]
    assert "largest usable of 2 stored calibrations" in again["shown_because"]
    assert f"sha256 {sha}" in calibration_note(again)

    pinned = find_calibration(config.model_copy(update={"calibration_labels": str(small)}))
    assert pinned["labels"]["name"] == "autoj_8.jsonl" and "configured" in pinned["shown_because"]
    assert "too small" in calibration_note(pinned)
    other = tmp_path / "never_calibrated.jsonl"
    other.write_text("x\n")
    assert find_calibration(config.model_copy(update={"calibration_labels": str(other)})) is None


def test_the_calibration_store_keeps_one_entry_per_labels_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_CACHE_DIR", str(tmp_path / "cache"))
    config = JudgeConfig()
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("a\n")
    b.write_text("b\n")
    golds = ["A", "B"] * 15
    path = store_calibration(config, _block(a, golds, golds, "2026-12-01"))
    store_calibration(config, _block(b, golds, golds, "2026-12-02"))
    entries = json.loads(path.read_text())["entries"]
    assert sorted(e["labels"]["name"] for e in entries.values()) == ["a.jsonl", "b.jsonl"]


@pytest.mark.parametrize("n", [8, 19])
def test_small_calibrations_are_flagged(n):
    golds = (["A", "B"] * 20)[:n]
    assert "too small" in calibration_problem(calibration_block(_items(golds), _judgments(golds)))
