"""What fine-tuning changed, measured without a judge (lima.pipeline.changes), on hand-made generations."""

from __future__ import annotations

import json

import pytest

from lima.pipeline.changes import answer_rows, answer_stats, base_baseline, dev_loss_rows, summary_lines


def _gen(prompt_id: str, output: str, finish: str, new_tokens: int, sample: int = 0) -> dict:
    return {"prompt_id": prompt_id, "sample": sample, "output": output,
            "settings": {"finish": finish, "new_tokens": new_tokens, "max_new_tokens": 8}}  # fmt: skip


def test_answer_stats_counts_end_of_turn_cuts_and_identical_answers():
    base = [_gen("p1", "same", "stop", 2), _gen("p2", "base two", "length", 8), _gen("p3", "b3", "stop", 1)]
    tuned = [
        _gen("p1", "same", "stop", 2),
        _gen("p2", "tuned answer", "stop", 5),
        _gen("p3", "x", "length", 8),
    ]
    stats = answer_stats(tuned, base)
    assert stats["answers"] == 3
    assert stats["mean_chars"] == pytest.approx((4 + 12 + 1) / 3)
    assert stats["mean_new_tokens"] == pytest.approx(5)
    assert stats["ended_at_eot"] == pytest.approx(2 / 3) and stats["cut_at_limit"] == pytest.approx(1 / 3)
    assert stats["identical_to_base"] == pytest.approx(1 / 3) and stats["compared_with_base"] == 3


def test_identical_is_compared_per_prompt_and_sample(tmp_path):
    base = [_gen("p1", "a", "stop", 1, sample=0), _gen("p1", "b", "stop", 1, sample=1)]
    tuned = [_gen("p1", "b", "stop", 1, sample=0), _gen("p1", "a", "stop", 1, sample=1)]
    assert answer_stats(tuned, base)["identical_to_base"] == 0  # same texts, swapped seeds: not identical
    files = {}
    for name, rows in {"model": tuned, "base": base}.items():
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = answer_rows(files, "base")
    assert [r["model"] for r in rows] == ["model", "base"]
    assert rows[0]["identical_to_base"] == 0 and rows[1]["identical_to_base"] is None


def test_dev_loss_rows_start_before_training(tmp_path):
    (tmp_path / "dev_loss_before_training.json").write_text(json.dumps({"epoch": 0, "dev_loss": 3.25}))
    (tmp_path / "epochs.jsonl").write_text(
        json.dumps({"epoch": 1, "dev_loss": 3.14, "train_loss": 3.3})
        + "\n"
        + json.dumps({"epoch": 2, "dev_loss": 3.12, "train_loss": 3.1})
        + "\n"
    )
    rows = dev_loss_rows(tmp_path)
    assert [r["epoch"] for r in rows] == ["0 (before training)", "1", "2"]
    assert [r["dev_loss"] for r in rows] == [3.25, 3.14, 3.12]
    summary = {"base": "base", "dev_loss": rows, "answers": [{"model": "model", "answers": 2, "mean_chars": 10.0,
               "ended_at_eot": 0.5, "identical_to_base": 0.0}]}  # fmt: skip
    lines = summary_lines(summary)
    assert lines[0] == "dev loss: 3.250 (before training) -> 3.140 (epoch 1) -> 3.120 (epoch 2)"
    assert lines[1] == "model: 2 answers, mean 10 chars, 50% ended at end-of-turn, 0% identical to base"


def test_the_base_baseline_is_the_model_before_fine_tuning():
    from types import SimpleNamespace as B

    baselines = [B(name="gpt", model=None), B(name="untuned", model="embedded:smollm2-135m-instruct")]
    assert base_baseline(baselines, "embedded:smollm2-135m-instruct") == "untuned"
    assert base_baseline([B(name="base", model="x")], "y") == "base"
    assert base_baseline([B(name="gpt", model=None)], "y") is None
