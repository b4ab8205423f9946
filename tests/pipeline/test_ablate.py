"""`lima ablate` on a demo variant over ../shared/data, with the tiny model.

The Likert judge here is a local OpenAI-compatible stub that scores deterministically from the answer, so the
table's means and CIs are real numbers to check; the embedded llama.cpp judge is exercised by the eval tests
(a 135M judge rarely writes a parseable score for a tiny random model's output)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.eval.fake_openai import FakeOpenAI

pytestmark = pytest.mark.slow


def _likert(body: dict) -> str:
    answer = body["messages"][-1]["content"].split("[Response]")[-1]
    return f"Reasonable.\nScore: {1 + sum(map(ord, answer)) % 6}"


def test_quality_demo_gives_a_row_per_arm_with_cis_and_a_plot(tmp_path, tiny_model_dir, shared_data, cli):
    with FakeOpenAI(reply=_likert) as judge:
        _check_quality_demo(tmp_path, tiny_model_dir, cli, judge)


def _check_quality_demo(tmp_path, tiny_model_dir, cli, judge):
    out = tmp_path / "ablate"
    overrides = [
        f"grade.overrides.endpoint.base_url={judge.base_url}",
        "grade.overrides.endpoint.model=stub",
        f"train.overrides.model={tiny_model_dir}",
        "train.overrides.chat_template=lima",
        "train.overrides.method=full",  # so that each arm's own data visibly moves the tiny model
        "train.overrides.learning_rate=0.01",
        "train.overrides.min_learning_rate=0.001",
        "train.overrides.max_length=128",
        "train.overrides.output.tensorboard=false",
        "generate.overrides.decoding.max_new_tokens=8",
        "grade.overrides.max_tokens=16",
        "grade.overrides.bootstrap=200",
        "prompt_limit=4",
        "samples=2",
    ]
    config = ROOT / "configs/ablations/quality_demo.yaml"
    result = cli("ablate", str(config), *overrides, "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads((out / "ablation.json").read_text())
    assert [r["arm"] for r in table["rows"]] == ["se_filtered", "se_unfiltered"]
    for row in table["rows"]:
        assert row["train_examples"] == 15  # all 15 filtered examples; the unfiltered arm is capped to match
        assert row["prompts"] == 4
        # every count named for what it counts (the fake judge always gives a parseable grade)
        assert (row["prompts_graded"], row["responses"], row["responses_graded"]) == (4, 8, 8)
        assert (row["grades_requested"], row["grades_unparseable"]) == (8, 0)
        assert f"{row['label']}: mean helpfulness {row['mean']:.2f} (95% CI [" in result.stdout
        low, high = row["ci95"]
        assert 1 <= low <= row["mean"] <= high <= 6
        # LIMA's protocol: K sampled responses per prompt (samples=2 here), each graded once
        assert (row["responses_per_prompt"], row["grades_per_response"]) == (2, 1)
    assert "prompts graded 4 of 4, responses graded 8 of 8, unparseable grades 0 of 8" in result.stdout
    assert len(judge.requests) == 2 * 4 * 2  # arms x prompts x responses, one grade each
    lines = {
        arm: [json.loads(line) for line in (out / "arms" / arm / "generate" / "model.jsonl").open()]
        for arm in ("se_filtered", "se_unfiltered")
    }
    for records in lines.values():
        assert [r["sample"] for r in records] == [0, 1] * 4
        assert len({r["settings"]["sample_seed"] for r in records}) == 8
    graded = [b["messages"][-1]["content"].split("[Response]")[-1] for b in judge.requests]
    assert len(set(graded)) > 8  # each request grades a different response, not one response twice
    outputs = {arm: [r["output"] for r in records] for arm, records in lines.items()}
    assert outputs["se_filtered"] != outputs["se_unfiltered"]  # each arm trained on its own data
    assert (out / "ablation.png").stat().st_size > 1000
    md = (out / "ablation.md").read_text()
    assert "| Filtered SE | 15 |" in md and "| Unfiltered SE | 15 |" in md
    assert "Per prompt: 2 sampled response(s), each graded 1 time(s)" in md

    # finished arms are skipped on rerun
    again = cli("ablate", str(config), *overrides, "--out", str(out), timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("finished before, skipped") == 2
    assert len(judge.requests) == 16  # nothing graded twice


def test_unknown_arm_suggests(tmp_path, cli):
    result = cli(
        "ablate",
        str(ROOT / "configs/ablations/quality_demo.yaml"),
        "--arm",
        "se_filterd",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert "did you mean se_filtered?" in result.stderr and "Traceback" not in result.stderr


def test_bad_stage_configs_reported_together(tmp_path, cli):
    config = tmp_path / "bad.yaml"
    config.write_text(
        (ROOT / "configs/ablations/quality_demo.yaml").read_text()
        + "\n"  # typos in two different stages: both named, one message
    )
    result = cli(
        "ablate",
        str(config),
        "train.overrides.learning_rat=1",
        "grade.overrides.samplez=2",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 2
    assert "learning_rat: unknown key (did you mean learning_rate?)" in result.stderr
    assert "samplez: unknown key (did you mean samples?)" in result.stderr
