"""Judge panels (Verga et al. 2024): per-order majority vote or mean soft preference over member judges, then
summarised and calibrated exactly like one judge."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from lima.core.config import load_config
from lima.eval.config import JudgeConfig
from lima.eval.judge import run_judging
from lima.eval.judging import judge_hash
from tests.eval.fake_openai import FakeOpenAI
from tests.eval.test_verdict_modes import _answers, _pairs


def _member(base_url: str, model: str, **extra) -> dict:
    return {
        "endpoint": {"base_url": base_url, "model": model, "api_key_env": None, "max_retries": 0},
        "template": "lima_3way.txt",
        "parser": "lima_3way",
        "parse_retries": 0,
        **extra,
    }


def _panel(tmp_path: Path, members: list[dict], **panel) -> Path:
    path = tmp_path / "panel.yaml"
    path.write_text(yaml.safe_dump({"panel": {"judges": members, **panel}}))
    return path


def _by_model(body: dict) -> str:
    """first: always the first position; good: the answer saying GOOD; last: always the second position."""
    first, second = _answers(body)
    pick = {
        "first": "A",
        "last": "B",
        "good": "A" if "GOOD" in first else "B" if "GOOD" in second else "Neither",
    }[body["model"].removesuffix("-2")]
    return (
        f"Answer {pick} is significantly better" if pick != "Neither" else "Neither is significantly better"
    )


def test_majority_panel_outvotes_a_position_biased_member(tmp_path):
    a, b = _pairs(tmp_path)
    with FakeOpenAI(reply=_by_model) as fake:
        members = [_member(fake.base_url, m) for m in ("first", "good", "good-2")]
        config = load_config(_panel(tmp_path, members), JudgeConfig)
        summary = run_judging(config, a, b, tmp_path / "run")
    assert len(fake.requests) == 3 * 8
    assert summary["client"]["requests"] == 3 * 8, "every member's requests are counted"
    assert (summary["wins"], summary["losses"], summary["ties"], summary["errors"]) == (3, 1, 0, 0)
    assert summary["judge"] == "panel(first, good, good-2)" and summary["verdict_mode"] == "panel"
    judgment = json.loads((tmp_path / "run" / "judgments.jsonl").read_text().splitlines()[0])
    assert [m["positional"] for m in judgment["orders"][1]["members"]] == ["A", "B", "B"]
    assert judgment["orders"][1]["positional"] == "B" and judgment["consistent"] is True


def test_majority_without_a_leader_is_a_tie(tmp_path):
    a, b = _pairs(tmp_path)
    with FakeOpenAI(reply=_by_model) as fake:
        members = [_member(fake.base_url, m) for m in ("first", "last")]
        config = load_config(_panel(tmp_path, members), JudgeConfig)
        summary = run_judging(config, a, b, tmp_path / "run")
    assert (summary["ties"], summary["n"]) == (4, 4)


def test_mean_panel_averages_soft_preferences(tmp_path):
    a, b = _pairs(tmp_path)

    def letters(body: dict) -> dict[str, float]:
        first, _ = _answers(body)
        p = {"soft-good": 0.8 if "GOOD" in first else 0.3, "soft-first": 0.9}[body["model"]]
        return {"A": math.log(p), "B": math.log(1 - p)}

    with FakeOpenAI(reply=lambda body: "A", first_token_logprobs=letters) as fake:
        soft = {"verdict": "logprobs", "server": "openai", "template": "pairwise_logprobs.txt"}
        members = [_member(fake.base_url, "soft-good", **soft), _member(fake.base_url, "soft-first", **soft)]
        config = load_config(_panel(tmp_path, members, vote="mean", tie_margin=0.05), JudgeConfig)
        summary = run_judging(config, a, b, tmp_path / "run")
    judgments = {
        j["prompt_id"]: j
        for j in map(json.loads, (tmp_path / "run" / "judgments.jsonl").read_text().splitlines())
    }
    # p1 (GOOD in A): AB mean P(first) = (0.8 + 0.9) / 2 = 0.85; BA = (0.3 + 0.9) / 2 = 0.6
    assert [o["p_first"] for o in judgments["p1"]["orders"]] == pytest.approx([0.85, 0.6])
    assert judgments["p1"]["preference"] == pytest.approx((0.85 + 0.4) / 2)
    assert summary["soft_win_rate"] is not None and summary["errors"] == 0


def test_panel_hash_depends_on_its_members(tmp_path):
    members = [_member("http://127.0.0.1:9/v1", m) for m in ("first", "good")]
    one = load_config(_panel(tmp_path, members), JudgeConfig)
    two = load_config(_panel(tmp_path, [members[0], {**members[1], "temperature": 0.5}]), JudgeConfig)
    three = load_config(_panel(tmp_path, members, vote="mean"), JudgeConfig)
    assert len({judge_hash(c) for c in (one, two, three)}) == 3


def test_panel_is_calibrated_like_one_judge(tmp_path, cli):
    labels = tmp_path / "labels.json"
    rows = [
        {"input": "Name a colour.", "output_1": "GOOD red", "output_2": "blue", "label": 1},
        {"input": "What is 2+2?", "output_1": "5", "output_2": "GOOD 4", "label": 2},
        {"input": "Write a haiku.", "output_1": "GOOD leaves", "output_2": "snow", "label": 1},
    ]
    labels.write_text(json.dumps(rows))
    with FakeOpenAI(reply=_by_model) as fake:
        config = _panel(tmp_path, [_member(fake.base_url, m) for m in ("first", "good", "good-2")])
        out = tmp_path / "cal"
        result = cli(
            "calibrate", str(config), "--labels", str(labels), "--format", "llmbar", "--out", str(out), "--json",
            env={"LIMA_CACHE_DIR": str(tmp_path / "cache")},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(fake.requests) == 3 * 2 * 3
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["n"] == 3 and calibration["accuracy"] == 1.0


def test_nested_panel_is_refused(tmp_path, cli):
    inner = {
        "panel": {"judges": [_member("http://127.0.0.1:9/v1", "a"), _member("http://127.0.0.1:9/v1", "b")]}
    }
    path = _panel(tmp_path, [inner, _member("http://127.0.0.1:9/v1", "c")])
    result = cli("validate", str(path), "--kind", "judge")
    assert result.returncode == 2 and "a panel member cannot itself be a panel" in result.stderr
