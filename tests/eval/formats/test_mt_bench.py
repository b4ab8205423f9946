"""MT-Bench (FastChat llm_judge): pair judgments counted as FastChat's show_result does, lima's parsers rerun
over the judgment texts, answers and questions round-trip, and two-turn generation on the model's own answers."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from lima.eval.parsers import parse_fastchat_pair, parse_mtbench
from tests.eval.fake_openai import FakeOpenAI, judge_config

DATA = Path(__file__).parent / "data" / "mt_bench"
PAIR = DATA / "model_judgment" / "gpt-4_pair.jsonl"


def test_pair_judgments_give_fastchats_win_tie_loss(tmp_path, cli):
    """show_result.py --mode pairwise-baseline --baseline-model gpt-3.5-turbo, by hand over the 7 rows:
    the `error` row is dropped; rows with the baseline: win (81/1), loss (81/2), tie (82/1, both tie),
    tie (82/2, the games disagree), win (83/2, the baseline as model_1) -> win 2, tie 2, loss 1,
    win_rate_adjusted (2 + 2/2) / 5 = 0.6. The llama-13b row does not involve the baseline."""
    out = tmp_path / "j.jsonl"
    result = cli("import", "mt_bench", str(PAIR), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["converted"], counts["skipped"]) == (6, 1)
    assert "gpt-4_pair.jsonl:5: FastChat error judgment" in result.stderr
    # the stored winners are FastChat's tag-precedence rule; lima's last-tag parser differs on row 1, game 1
    reparse = counts["reparse"]
    assert (reparse["games"], reparse["fastchat_rule_agrees"], reparse["last_tag_agrees"]) == (12, 12, 11)
    assert reparse["last_tag_differs_at"] == [f"{PAIR}:1 game 1"]
    assert "tag precedence" in reparse["why_last_tag_differs"]

    summary = json.loads(cli("summarize", str(out), "--baseline", "gpt-3.5-turbo", "--json").stdout)
    assert (summary["model_a"], summary["model_b"]) == ("vicuna-tiny", "gpt-3.5-turbo")
    assert (summary["n"], summary["wins"], summary["ties"], summary["losses"]) == (5, 2, 2, 1)
    assert summary["win_rate"] == 60.0

    every_pair = json.loads(cli("summarize", str(out), "--json").stdout)["pairs"]
    assert sorted((p["model_a"], p["model_b"], p["n"]) for p in every_pair) == [
        ("gpt-3.5-turbo", "vicuna-tiny", 1),
        ("vicuna-tiny", "gpt-3.5-turbo", 4),
        ("vicuna-tiny", "llama-13b", 1),
    ]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[1]["prompt_id"] == "81:turn2" and lines[1]["prompt"].startswith("Rewrite it")
    assert lines[0]["orders"][0]["raw"].endswith("Final verdict: [[B]]")  # judgment texts are kept


def test_fastchat_rule_is_tag_precedence_not_the_last_tag():
    quoted = 'The format is "[[A]]" if A is better, "[[B]]" if B is better. Final verdict: [[B]]'
    assert parse_fastchat_pair(quoted).verdict == "A"  # what FastChat stored
    assert parse_mtbench(quoted).verdict == "B"  # what the judge meant
    assert parse_fastchat_pair("[[C]] ... then [[B]]").verdict == "B"
    assert parse_fastchat_pair("a tie: [[C]]").verdict == "tie"
    assert parse_fastchat_pair("[[ A ]]") is None  # exact tags only, as in FastChat


def test_answers_and_questions_round_trip(tmp_path, cli):
    gen = tmp_path / "gen.jsonl"
    answers = DATA / "model_answer" / "vicuna-tiny.jsonl"
    assert cli("import", "mt_bench", str(answers), "--out", str(gen)).returncode == 0
    records = [json.loads(line) for line in gen.read_text().splitlines()]
    assert [r["prompt_id"] for r in records] == ["81", "81:turn2", "82", "82:turn2", "83", "83:turn2"]
    assert records[1]["history"] == [
        {"role": "user", "content": "Compose a short travel blog post about Hawaii."},
        {"role": "assistant", "content": "vicuna-tiny turn 1 on 81"},
    ]
    back = tmp_path / "vicuna-tiny.jsonl"
    assert cli("export-generations", "mt_bench", str(gen), "--out", str(back)).returncode == 0
    assert back.read_text() == answers.read_text()

    prompts = tmp_path / "prompts.jsonl"
    assert cli("import", "mt_bench", str(DATA / "question.jsonl"), "--out", str(prompts)).returncode == 0
    again = tmp_path / "question.jsonl"
    assert cli("export-generations", "mt_bench", str(prompts), "--out", str(again)).returncode == 0
    assert [json.loads(line) for line in again.read_text().splitlines()] == [
        json.loads(line) for line in (DATA / "question.jsonl").read_text().splitlines()
    ]


def test_answers_without_their_questions_say_how_to_fix(tmp_path, cli):
    lonely = tmp_path / "answers.jsonl"
    lonely.write_text((DATA / "model_answer" / "vicuna-tiny.jsonl").read_text())
    result = cli("import", "mt_bench", str(lonely), "--out", str(tmp_path / "g.jsonl"))
    assert result.returncode == 2 and "pass --questions question.jsonl" in result.stderr
    assert "Traceback" not in result.stderr
    ok = cli(
        "import",
        "mt_bench",
        str(lonely),
        "--questions",
        str(DATA / "question.jsonl"),
        "--out",
        str(tmp_path / "g.jsonl"),
    )
    assert ok.returncode == 0, ok.stderr


def test_two_turn_generation_continues_the_models_own_answer(tmp_path):
    """Turn 2 is asked after the model's OWN turn-1 answer (FastChat gen_model_answer), not a reference."""
    from lima.core.config import load_config
    from lima.eval.config import GenerateConfig
    from lima.eval.generate import run_generation
    from lima.eval.inputs import read_generations
    from lima.eval.records import pair_generations

    def reply(body):
        turns = [m["content"] for m in body["messages"] if m["role"] != "system"]
        return f"own answer {len(turns)} to {turns[-1][:12]}"

    with FakeOpenAI(reply=reply) as fake:
        config_path = tmp_path / "gen.yaml"
        endpoint = {"base_url": fake.base_url, "model": "served-model", "api_key_env": None}
        config_path.write_text(
            yaml.safe_dump(
                {
                    "backend": "openai",
                    "openai_server": "openai",
                    "prompts": str(DATA / "question.jsonl"),
                    "endpoint": endpoint,
                }
            )
        )
        config = load_config(config_path, GenerateConfig)
        out = run_generation(config, tmp_path / "g.jsonl")
        bodies = list(fake.requests)
        run_generation(config, out)  # a rerun sends nothing: both turns resume
        assert len(fake.requests) == len(bodies) == 6
    second = next(b for b in bodies if "Rewrite it" in b["messages"][-1]["content"])
    assert [m["role"] for m in second["messages"] if m["role"] != "system"] == ["user", "assistant", "user"]
    assert (
        next(m for m in second["messages"] if m["role"] == "assistant")["content"]
        == "own answer 1 to Compose a sh"
    )
    records = read_generations(out)
    assert [r["prompt_id"] for r in records] == ["81", "81:turn2", "82", "82:turn2", "83", "83:turn2"]
    # a leaderboard model's FastChat answers pair with ours as the baseline
    baseline = DATA / "model_answer" / "gpt-3.5-turbo.jsonl"
    pairs = pair_generations(records, read_generations(baseline), out, baseline)
    assert len(pairs) == 6 and pairs[1][1]["output"] == "gpt-3.5-turbo turn 2 on 81"


def test_turn_two_is_judged_with_each_models_own_conversation(tmp_path, cli):
    """pair-v2 for turn 1; for turn 2 FastChat's pair-v2-multi-turn: both whole conversations, each model's own
    turn-1 answer, in both orders, with the multi-turn system prompt. Question 83 (math) is judged by reference
    (pair-math-v1, pair-math-v1-multi-turn)."""
    from lima.core.config import load_config
    from lima.eval.config import JudgeConfig
    from lima.eval.judge import run_judging

    ours = tmp_path / "vicuna.jsonl"
    assert (
        cli(
            "import", "mt_bench", str(DATA / "model_answer" / "vicuna-tiny.jsonl"), "--out", str(ours)
        ).returncode
        == 0
    )
    with FakeOpenAI(reply=lambda body: "[[A]]") as fake:
        references = tmp_path / "gpt-4.jsonl"
        references.write_text(json.dumps({"question_id": 83, "choices": [{"turns": ["REF 21", "REF 25"]}]}))
        path = judge_config(
            tmp_path / "judge.yaml",
            fake,
            template="mt_bench_pair_v2.txt",
            parser="mtbench",
            questions=str(DATA / "question.jsonl"),
            references=str(references),
        )
        summary = run_judging(
            load_config(path, JudgeConfig),
            ours,
            DATA / "model_answer" / "gpt-3.5-turbo.jsonl",
            tmp_path / "run",
        )
        bodies = list(fake.requests)
    assert summary["n"] == 6 and len(bodies) == 12
    root = Path(__file__).resolve().parents[3] / "lima" / "eval" / "prompts"
    multi_system = (root / "mt_bench_pair_v2_multi_turn_system.txt").read_text().strip()
    turn2 = [
        b
        for b in bodies
        if b["messages"][0]["content"] == multi_system and "81" in b["messages"][1]["content"]
    ]
    assert len(turn2) == 2
    ab = next(
        b["messages"][1]["content"]
        for b in turn2
        if b["messages"][1]["content"].index("vicuna") < b["messages"][1]["content"].index("gpt-3.5")
    )
    assert ab.startswith(
        "<|The Start of Assistant A's Conversation with User|>\n\n### User:\nCompose a short travel"
    )
    assert "### Assistant A:\nvicuna-tiny turn 1 on 81\n\n### User:\nRewrite it" in ab
    assert "### Assistant A:\nvicuna-tiny turn 2 on 81\n\n<|The End of Assistant A's" in ab
    assert (
        "### Assistant B:\ngpt-3.5-turbo turn 1 on 81\n\n" in ab
        and "### Assistant B:\ngpt-3.5-turbo turn 2 on 81" in ab
    )
    ba = next(b["messages"][1]["content"] for b in turn2 if b["messages"][1]["content"] != ab)
    assert (
        "### Assistant A:\ngpt-3.5-turbo turn 1 on 81" in ba
        and "### Assistant B:\nvicuna-tiny turn 2 on 81" in ba
    )
    turn1 = next(
        b for b in bodies if "[User Question]\nCompose a short travel" in b["messages"][-1]["content"]
    )
    assert turn1["messages"][-1]["content"].startswith(
        "[User Question]\nCompose a short travel blog post about Hawaii.\n\n"
    )
    math = [b["messages"] for b in bodies if "What is 3 * 7?" in b["messages"][-1]["content"]]
    assert len(math) == 4 and all(
        "Reference Answer" in m[1]["content"] and "REF 21\n" in m[1]["content"] for m in math
    )
    assert sum("REF 25" in m[1]["content"] for m in math) == 2  # turn 2 shows both references


def test_pair_judgments_round_trip(tmp_path, cli):
    judgments = tmp_path / "j.jsonl"
    assert cli("import", "mt_bench", str(PAIR), "--out", str(judgments)).returncode == 0
    back = tmp_path / "gpt-4_pair.jsonl"
    assert cli("export-generations", "mt_bench", str(judgments), "--out", str(back)).returncode == 0
    source = [json.loads(line) for line in PAIR.read_text().splitlines()]
    assert [json.loads(line) for line in back.read_text().splitlines()] == [
        r for r in source if "error" not in (r["g1_winner"], r["g2_winner"])
    ]
