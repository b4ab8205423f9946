"""Arena-Hard-Auto: five-level judgments scored as arena-hard-auto does (strong verdicts weighted 3, against the
baseline), answers in both layouts, and question.jsonl / model_answer files used as prompts and baseline."""

from __future__ import annotations

import json
from pathlib import Path

from lima.eval.summary import arena_hard_battles

DATA = Path(__file__).parent / "data" / "arena_hard"
JUDGMENTS = DATA / "model_judgment" / "gpt-4-1106-preview" / "model-x.jsonl"


def test_judgments_give_arena_hard_score(tmp_path, cli):
    """Game 1 shows the baseline as A, game 2 the model. From model-x's side, by hand:
    a1 B>A, A>B -> 1, 1; a2 B>>A, A>>B -> 1×3, 1×3; a3 A>>B, B>A -> 0×3, 0; a4 A=B, A>B -> .5, 1;
    a5 has a null score (skipped, as v2.0 does: these rows are in v2.0's layout). 14 battles, sum 9.5: a mean of
    67.86, and v2.0's score is the mean of its 100 bootstrap means around it. Both orders combined strictly:
    wins a1 a2, loss a3, tie a4 -> win_rate 62.5."""
    out = tmp_path / "j.jsonl"
    result = cli("import", "arena_hard", str(JUDGMENTS), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped_by_reason"] == {
        "null judgment score (the judge's reply had no verdict)": 1
    }
    summary = json.loads(cli("summarize", str(out), "--json").stdout)
    assert (summary["model_a"], summary["model_b"]) == ("model-x", "gpt-4-0314")
    assert (summary["arena_hard_version"], summary["category"], summary["arena_hard_battles"]) == (
        "2.0",
        "hard_prompt",
        14,
    )
    low, high = summary["arena_hard_v2_ci90"]
    assert low < summary["arena_hard_score"] < high and abs(summary["arena_hard_score"] - 100 * 9.5 / 14) < 3
    assert (summary["wins"], summary["ties"], summary["losses"], summary["win_rate"]) == (2, 1, 1, 62.5)
    first = json.loads(out.read_text().splitlines()[0])
    assert [(o["order"], o["level"], o["verdict"]) for o in first["orders"]] == [
        ("BA", "B>A", "A"),
        ("AB", "A>B", "A"),
    ]


def test_battles_weight_strong_verdicts_and_ignore_three_level_judgments():
    strong = {"orders": [{"order": "AB", "level": "B>>A"}, {"order": "BA", "level": "A=B"}]}
    assert arena_hard_battles(strong) == [0.0, 0.0, 0.0, 0.5]
    assert arena_hard_battles(strong, weight=1) == [0.0, 0.5]
    assert (
        arena_hard_battles({"orders": [{"order": "AB", "level": "[[A]]"}, {"order": "BA", "level": "[[B]]"}]})
        is None
    )


def test_answers_round_trip_and_work_as_baseline(tmp_path, cli):
    from lima.eval.inputs import read_generations, read_prompts
    from lima.eval.records import pair_generations

    gen = tmp_path / "gen.jsonl"
    answers = DATA / "model_answer" / "model-x.jsonl"
    assert cli("import", "arena_hard", str(answers), "--out", str(gen)).returncode == 0
    back = tmp_path / "model-x.jsonl"
    assert cli("export-generations", "arena_hard", str(gen), "--out", str(back)).returncode == 0
    assert back.read_text() == answers.read_text()

    prompts = read_prompts(DATA / "question.jsonl")
    assert [p.id for p in prompts] == ["a1", "a2", "a3", "a4", "a5"]
    ours = [{"prompt_id": p.id, "prompt": p.text, "model": "lima", "output": "ours"} for p in prompts]
    # the baseline's answers in the v0.1 layout take their prompts from question.jsonl one folder up
    baseline = DATA / "model_answer" / "gpt-4-0314.jsonl"
    pairs = pair_generations(ours, read_generations(baseline), Path("ours.jsonl"), baseline)
    assert [b["output"] for _, b in pairs] == [f"gpt-4 on a{k}" for k in range(1, 6)]


def test_questions_round_trip(tmp_path, cli):
    prompts = tmp_path / "p.jsonl"
    assert cli("import", "arena_hard", str(DATA / "question.jsonl"), "--out", str(prompts)).returncode == 0
    again = tmp_path / "question.jsonl"
    assert cli("export-generations", "arena_hard", str(prompts), "--out", str(again)).returncode == 0
    load = lambda p: [json.loads(line) for line in p.read_text().splitlines()]  # noqa: E731
    assert load(again) == load(DATA / "question.jsonl")


def test_judgments_round_trip(tmp_path, cli):
    judgments = tmp_path / "j.jsonl"
    assert cli("import", "arena_hard", str(JUDGMENTS), "--out", str(judgments)).returncode == 0
    back = tmp_path / "model-x.jsonl"
    assert cli("export-generations", "arena_hard", str(judgments), "--out", str(back)).returncode == 0
    source = [json.loads(line) for line in JUDGMENTS.read_text().splitlines()]
    usable = [r for r in source if all(g["score"] is not None for g in r["games"])]
    assert [json.loads(line) for line in back.read_text().splitlines()] == usable


def test_lima_judge_with_the_five_level_template_reports_the_arena_hard_score(tmp_path):
    """A judge that always answers [[A>>B]] (the answer shown first, much better): order AB gives model A three
    wins, order BA three losses -> 50.0 over 6 battles per prompt."""

    from lima.core.config import load_config
    from lima.eval.config import JudgeConfig
    from lima.eval.judge import run_judging
    from tests.eval.fake_openai import FakeOpenAI, judge_config

    for name in ("a", "b"):
        rows = [
            {"prompt_id": f"p{k}", "prompt": f"q{k}", "model": name, "output": f"{name}{k}"} for k in range(2)
        ]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeOpenAI(reply=lambda body: "My final verdict is [[A>>B]]") as fake:
        path = judge_config(
            tmp_path / "judge.yaml", fake, template="arena_hard_5level.txt", parser="arena_hard"
        )
        summary = run_judging(
            load_config(path, JudgeConfig), tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "run"
        )
    assert (summary["arena_hard_score"], summary["arena_hard_battles"], summary["ties"]) == (50.0, 12, 2)
