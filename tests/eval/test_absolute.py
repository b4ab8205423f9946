"""LIMA's absolute analysis (Fail / Pass / Excellent, per assistant turn in context) and the sampling
protocol of `lima grade` (K sampled responses per prompt, each graded `samples` times)."""

from __future__ import annotations

import json

import pytest
import yaml

from lima.eval.grade import parse_absolute
from lima.eval.report import absolute_chart
from tests.eval.fake_openai import FakeOpenAI


def _endpoint(base_url: str) -> dict:
    return {"base_url": base_url, "model": "fake", "api_key_env": None, "concurrency": 4, "max_retries": 1}


def _write_gen(path, rows):
    path.write_text(
        "".join(json.dumps({"model": "m", "settings": {}, **row}) + "\n" for row in rows), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("It answers the question fully.\nGrade: Pass", "pass"),
        ("At first I thought Grade: Fail, but on reflection\nGrade: **Excellent**", "excellent"),
        ("Fail.", "fail"),
        ("rating: excellent", "excellent"),
        ("This would pass, though it is not excellent.", None),  # two labels, no grade line: not a guess
        ("I cannot tell.", None),
        ("Passing grade", None),
    ],
)
def test_parse_absolute(reply, label):
    assert parse_absolute(reply) == label


DIALOGUE_HISTORY = [
    {"role": "user", "content": "I want to bake bread at home. What do I need?"},
    {"role": "assistant", "content": "Flour, water, salt and yeast."},
]


def test_absolute_grading_counts_and_turns(tmp_path, cli):
    gen = _write_gen(
        tmp_path / "gen.jsonl",
        [
            {"prompt_id": "p1", "prompt": "What is 2+2?", "output": "excellent answer"},
            {"prompt_id": "p2", "prompt": "Name a colour.", "output": "passable answer"},
            {"prompt_id": "p3", "prompt": "Sort 3, 1, 2.", "output": "failing answer"},
            {"prompt_id": "p4", "prompt": "Why?", "output": "confusing answer"},
            {
                "prompt_id": "d1",
                "prompt": "How long does the dough need to rise?",
                "history": DIALOGUE_HISTORY,
                "output": "passable follow-up",
            },
        ],
    )

    def reply(body):
        text = body["messages"][-1]["content"]
        answer = text.split("[Response]\n", 1)[1]
        for word, grade in (("excellent", "Excellent"), ("passable", "Pass"), ("failing", "Fail")):
            if answer.startswith(word):
                return f"Reasoning.\nGrade: {grade}"
        return "no idea"

    with FakeOpenAI(reply=reply) as fake:
        config = tmp_path / "grade.yaml"
        config.write_text(
            yaml.safe_dump(
                {"endpoint": _endpoint(fake.base_url), "scale": "absolute", "samples": 1, "parse_retries": 1}
            )
        )
        result = cli("grade", str(config), "--gen", str(gen), "--out", str(tmp_path / "g"))
        assert result.returncode == 0, result.stderr
        shown = [body["messages"][-1]["content"] for body in fake.requests]
    assert len(shown) == 5 + 1  # p4 is re-asked once
    # LIMA's definitions reach the grader, and the follow-up turn is graded in its conversation.
    assert "Fail: the response does not meet the requirements" in shown[0]
    follow_up = next(t for t in shown if "How long does the dough" in t)
    assert "[Conversation so far]" in follow_up and DIALOGUE_HISTORY[1]["content"] in follow_up
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["scale"] == "absolute"
    assert summary["counts"] == {"fail": 1, "pass": 2, "excellent": 1} and summary["errors"] == 1
    assert (summary["excellent_pct"], summary["pass_pct"], summary["fail_pct"]) == (25.0, 50.0, 25.0)
    assert summary["by_turn"]["2"]["counts"] == {"fail": 0, "pass": 1, "excellent": 0}
    assert summary["by_turn"]["1"]["errors"] == 1
    rows = [json.loads(line) for line in (tmp_path / "g" / "scores.jsonl").read_text().splitlines()]
    assert [(r["prompt_id"], r["turn"], r["label"]) for r in rows] == [
        ("p1", 1, "excellent"), ("p2", 1, "pass"), ("p3", 1, "fail"), ("p4", 1, None), ("d1", 2, "pass"),
    ]  # fmt: skip


def test_absolute_label_is_the_most_frequent_grade(tmp_path, cli):
    gen = _write_gen(tmp_path / "gen.jsonl", [{"prompt_id": "p1", "prompt": "q", "output": "answer"}])
    grades = iter(["Grade: Excellent", "Grade: Pass", "Grade: Excellent"])
    with FakeOpenAI(reply=lambda body: next(grades)) as fake:
        config = tmp_path / "grade.yaml"
        config.write_text(
            yaml.safe_dump({"endpoint": {**_endpoint(fake.base_url), "concurrency": 1}, "scale": "absolute"})
        )
        result = cli("grade", str(config), "--gen", str(gen), "--samples", "3", "--out", str(tmp_path / "g"))
        assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["counts"] == {"fail": 0, "pass": 0, "excellent": 1} and summary["grade_samples"] == 3


def test_sampled_responses_each_graded_once(tmp_path, cli):
    """LIMA's ablation protocol: K responses per prompt (lines sharing prompt_id, with `sample`), each graded
    once; the prompt scores the mean of its responses, the summary the mean over prompts."""
    scores = {"good": 6, "fine": 4, "weak": 2, "poor": 1}
    gen = _write_gen(
        tmp_path / "gen.jsonl",
        [
            {"prompt_id": "p1", "sample": 0, "prompt": "q1", "output": "good"},
            {"prompt_id": "p1", "sample": 1, "prompt": "q1", "output": "weak"},
            {"prompt_id": "p1", "sample": 2, "prompt": "q1", "output": "fine"},
            {"prompt_id": "p2", "sample": 0, "prompt": "q2", "output": "poor"},
            {"prompt_id": "p2", "sample": 1, "prompt": "q2", "output": "fine"},
            {"prompt_id": "p2", "sample": 2, "prompt": "q2", "output": "poor"},
        ],
    )

    def reply(body):
        return f"Score: {scores[body['messages'][-1]['content'].split('[Response]')[1].split()[0]]}"

    with FakeOpenAI(reply=reply) as fake:
        config = tmp_path / "grade.yaml"
        config.write_text(yaml.safe_dump({"endpoint": _endpoint(fake.base_url), "samples": 1}))
        result = cli("grade", str(config), "--gen", str(gen), "--out", str(tmp_path / "g"))
        assert result.returncode == 0, result.stderr
        assert len(fake.requests) == 6  # every sampled response graded once (the two "poor" ones apart)
        result = cli("grade", str(config), "--gen", str(gen), "--limit", "1", "--out", str(tmp_path / "g1"))
        assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert (summary["n"], summary["prompts"], summary["lines"]) == (2, 2, 6)
    assert (summary["generation_samples"], summary["grade_samples"]) == (3, 1)
    assert summary["mean"] == pytest.approx((4.0 + 2.0) / 2)  # p1: (6+2+4)/3, p2: (1+4+1)/3
    assert summary["histogram"] == {"1": 2, "2": 1, "4": 2, "6": 1}
    rows = [json.loads(line) for line in (tmp_path / "g" / "scores.jsonl").read_text().splitlines()]
    assert [(r["prompt_id"], r["sample"], r["score"]) for r in rows][:2] == [("p1", 0, 6.0), ("p1", 1, 2.0)]

    limited = json.loads((tmp_path / "g1" / "summary.json").read_text())
    assert (limited["prompts"], limited["lines"], limited["mean"]) == (1, 3, 4.0)  # a prompt, all its samples


def test_absolute_chart(tmp_path):
    path = absolute_chart(
        {
            "LIMA": {"excellent_pct": 50.0, "pass_pct": 38.0, "fail_pct": 12.0},
            "base": {"excellent_pct": 20.0, "pass_pct": 40.0, "fail_pct": 40.0},
        },
        tmp_path / "absolute.png",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("scale", "grammar", "reply", "field", "value"),
    [
        ("absolute", 'root ::= "Fail" | "Pass" | "Excellent"', "Pass", "label", "pass"),
        ("likert", 'root ::= "Score: " [1-6]', "Score: 5", "score", 5.0),
    ],
)
def test_constrained_grader_sends_the_scale_grammar(tmp_path, cli, scale, grammar, reply, field, value):
    gen = _write_gen(tmp_path / "gen.jsonl", [{"prompt_id": "p1", "prompt": "q", "output": "an answer"}])
    with FakeOpenAI(reply=lambda body: reply) as fake:
        config = tmp_path / "grade.yaml"
        config.write_text(
            yaml.safe_dump(
                {"endpoint": _endpoint(fake.base_url), "scale": scale, "samples": 1, "constrained": True}
            )
        )
        result = cli("grade", str(config), "--gen", str(gen), "--out", str(tmp_path / "g"))
        assert result.returncode == 0, result.stderr
        assert [body.get("grammar") for body in fake.requests] == [grammar]
    row = json.loads((tmp_path / "g" / "scores.jsonl").read_text())
    assert row[field] == value
