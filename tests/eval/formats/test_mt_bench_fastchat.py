"""MT-Bench judged and graded as FastChat's llm_judge does, checked on REAL FastChat rows (data/mt_bench_real:
questions 112 math, 124 coding, 134 extraction; phi-3 vs phi-3-dpo): the messages lima sends equal the stored
g1/g2_user_prompt (pairwise) and user_prompt (single) byte for byte, with judge_prompts.jsonl's system prompts;
FastChat's verdict rule without re-asks (its `error` game is an error row here too); the single-answer mean as
show_result.py computes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lima.core.config import load_config
from lima.core.errors import LimaError
from lima.eval.config import GradeConfig, JudgeConfig
from lima.eval.inputs import read_generations
from lima.eval.parsers import parse_fastchat_rating
from lima.eval.protocols.mt_bench import FastChatPrompt, grade_prompt, pair_prompt, turn_meta
from lima.eval.records import PairItem, judged_prompt, pair_generations
from tests.conftest import ROOT
from tests.eval.fake_openai import FakeOpenAI

REAL = Path(__file__).parent / "data" / "mt_bench_real"
PHI3, DPO = REAL / "model_answer" / "phi-3.jsonl", REAL / "model_answer" / "phi-3-dpo.jsonl"
QUESTIONS, REFERENCES = REAL / "question.jsonl", REAL / "reference_answer" / "gpt-4.jsonl"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


JUDGE_PROMPTS = {row["name"]: row for row in _rows(REAL / "judge_prompts.jsonl")}
PAIR_ROWS = _rows(REAL / "model_judgment" / "gpt-4_pair.jsonl")
SINGLE_ROWS = _rows(REAL / "model_judgment" / "gpt-4_single.jsonl")
BY_QID = {str(row["question_id"]): row for row in _rows(QUESTIONS)}
ANSWERS = {
    path: {str(r["question_id"]): r["choices"][0]["turns"] for r in _rows(path)} for path in (PHI3, DPO)
}
REFS = {str(r["question_id"]): r["choices"][0]["turns"] for r in _rows(REFERENCES)}


def _judge(**fields) -> JudgeConfig:
    base = {
        "template": "mt_bench_pair_v2.txt",
        "questions": str(QUESTIONS),
        "references": str(REFERENCES),
        "parser": "fastchat",
        "parse_retries": 0,
    }
    return JudgeConfig(**{**base, **fields})


def _items() -> dict[str, PairItem]:
    """phi-3 (A, FastChat's model_1) against phi-3-dpo (B), as `lima judge` builds the pairs."""
    a, b = read_generations(PHI3), read_generations(DPO)
    pairs = pair_generations(a, b, PHI3, DPO)
    return {
        x["prompt_id"]: PairItem(x["prompt_id"], judged_prompt(x), x["output"], y["output"], turn_meta(x, y))
        for x, y in pairs
    }


def _fastchat_pair_prompt(qid: str, turn: int, first: Path, second: Path) -> tuple[str, str]:
    """(system, user) as FastChat's run_judge_pair builds them for ``first`` shown as assistant A: the stored
    template's str.format with FastChat's arguments. The fork holds no turn-2 pair judgment, so turn 2 is
    checked against this (turn 1 against the stored prompts as well)."""
    question = BY_QID[qid]
    by_reference = question["category"] in ("math", "reasoning", "coding")
    name = ("pair-math-v1" if by_reference else "pair-v2") + ("-multi-turn" if turn == 2 else "")
    kwargs = {}
    if by_reference:
        kwargs["ref_answer_1"] = REFS[qid][0]
        if turn == 2:
            kwargs["ref_answer_2"] = REFS[qid][1]
    a, b = ANSWERS[first][qid], ANSWERS[second][qid]
    template = JUDGE_PROMPTS[name]["prompt_template"]
    if turn == 2:
        user = template.format(
            question_1=question["turns"][0], question_2=question["turns"][1], answer_a_1=a[0],
            answer_b_1=b[0], answer_a_2=a[1], answer_b_2=b[1], **kwargs,
        )  # fmt: skip
    else:
        user = template.format(question=question["turns"][0], answer_a=a[0], answer_b=b[0], **kwargs)
    return JUDGE_PROMPTS[name]["system_prompt"], user


def test_shipped_prompts_are_fastchats_byte_for_byte():
    """All eight judge prompts: the system prompt and the user template (pair-v2's with lima's {prompt})."""
    for name, row in JUDGE_PROMPTS.items():
        prompt = FastChatPrompt.load(name)
        assert prompt.system == row["system_prompt"], name
        expected = row["prompt_template"]
        if name == "pair-v2":  # the config's template: lima's placeholder names
            expected = expected.replace("{question}", "{prompt}")
        assert prompt.template == expected, name


@pytest.mark.parametrize("name", ["openai_mt_bench_pair.yaml", "openai_mtbench.yaml"])
def test_mt_bench_judge_configs_are_fastchats(name):
    """The shipped MT-Bench judges: pair-v2's template with its system prompt in the config (so `lima calibrate`
    sends it too), FastChat's verdict rule, temperature, max_tokens, no re-ask, and both files named."""
    judge = load_config(ROOT / "configs/judge" / name, JudgeConfig)
    assert judge.system_prompt == JUDGE_PROMPTS["pair-v2"]["system_prompt"]
    assert (judge.template, judge.parser, judge.temperature, judge.max_tokens, judge.parse_retries) == (
        "mt_bench_pair_v2.txt",
        "fastchat",
        0.0,
        2048,
        0,
    )
    assert judge.questions.endswith("mt_bench/question.jsonl")
    assert judge.references.endswith("mt_bench/reference_answer/gpt-4.jsonl")


def test_turn_1_messages_equal_fastchats_stored_user_prompts():
    """pair-v2 (134) and pair-math-v1 with GPT-4's reference (112, 124), both orders: g1 shows model_1 first."""
    items = _items()
    strategy = pair_prompt(_judge(), list(items.values()))
    assert strategy is not None
    seen = set()
    for row in PAIR_ROWS:
        assert (row["model_1"], row["model_2"], row["turn"]) == ("phi-3", "phi-3-dpo", 1)
        item = items[str(row["question_id"])]
        system = JUDGE_PROMPTS[row["judge"][1]]["system_prompt"]
        for order, stored in (("AB", row["g1_user_prompt"]), ("BA", row["g2_user_prompt"])):
            first, second = (
                (item.answer_a, item.answer_b) if order == "AB" else (item.answer_b, item.answer_a)
            )
            messages = strategy.messages(item, order, first, second)
            assert messages == [{"role": "system", "content": system}, {"role": "user", "content": stored}]
        seen.add(row["judge"][1])
    assert seen == {"pair-v2", "pair-math-v1"}


@pytest.mark.parametrize("qid", ["134", "112", "124"])
def test_turn_2_shows_each_models_own_conversation_as_fastchat(qid):
    """pair-v2-multi-turn (134) and pair-math-v1-multi-turn with both references (112, 124)."""
    items = _items()
    strategy = pair_prompt(_judge(), list(items.values()))
    item = items[f"{qid}:turn2"]
    for order, (first, second) in (("AB", (PHI3, DPO)), ("BA", (DPO, PHI3))):
        shown = (item.answer_a, item.answer_b) if order == "AB" else (item.answer_b, item.answer_a)
        system, user = _fastchat_pair_prompt(qid, 2, first, second)
        assert strategy.messages(item, order, *shown) == [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
    # and turn 1 agrees with this construction too (it equals the stored prompts above)
    system, user = _fastchat_pair_prompt(qid, 1, PHI3, DPO)
    assert strategy.messages(items[qid], "AB", items[qid].answer_a, items[qid].answer_b)[1]["content"] == user


def test_reference_guided_questions_need_the_files(tmp_path):
    items = list(_items().values())
    with pytest.raises(LimaError, match=r"^questions: .*set questions=PATH"):
        pair_prompt(_judge(questions=None), items)
    with pytest.raises(LimaError, match=r"^references: question 112 \(math\) .*set references=PATH"):
        pair_prompt(_judge(references=None), items)
    partial = tmp_path / "gpt-4.jsonl"
    partial.write_text(REFERENCES.read_text().splitlines()[0] + "\n")  # 112's only
    with pytest.raises(
        LimaError, match=rf"question 124 \(coding\): no reference answer for turn 1 .*{partial}"
    ):
        pair_prompt(_judge(references=str(partial)), items)
    uncategorised = tmp_path / "question.jsonl"
    uncategorised.write_text("".join(
        json.dumps({k: v for k, v in row.items() if k != "category"}) + "\n" for row in BY_QID.values()
    ))  # fmt: skip
    with pytest.raises(LimaError, match=r"question \d+: no category in questions: "):
        pair_prompt(_judge(questions=str(uncategorised)), items)
    # a judge with its own template is not FastChat's pair-v2 family: no questions needed
    assert pair_prompt(_judge(template="mtbench_pairwise.txt", questions=None), items) is None


def test_missing_files_stop_lima_judge_before_any_request(tmp_path, cli):
    with FakeOpenAI() as fake:
        args = [
            "judge",
            str(ROOT / "configs/judge/openai_mt_bench_pair.yaml"),
            "--a",
            str(PHI3),
            "--b",
            str(DPO),
        ]
        common = [f"endpoint.base_url={fake.base_url}", "endpoint.api_key_env=null"]
        result = cli(*args, "--out", str(tmp_path / "a"), *common, f"references={REFERENCES}",
                     f"questions={tmp_path / 'nope.jsonl'}")  # fmt: skip
        assert (
            result.returncode != 0
            and "questions: " in result.stderr
            and "nope.jsonl not found" in result.stderr
        )
        result = cli(
            *args, "--out", str(tmp_path / "b"), *common, f"questions={QUESTIONS}", "references=null"
        )
        assert result.returncode != 0 and "references: question 112 (math)" in result.stderr
        assert "Traceback" not in result.stderr
        assert fake.requests == []


def test_fastchat_judge_config_runs_fastchats_protocol(tmp_path):
    """The shipped config over the real answers, the judge replying FastChat's stored judgments: the same
    winners, no re-ask, and 124's unparseable game 2 (FastChat: `error`) an error row, counted, never a tie."""
    from lima.eval.judge import run_judging

    stored = {row["g1_user_prompt"]: row["g1_judgment"] for row in PAIR_ROWS}
    stored.update({row["g2_user_prompt"]: row["g2_judgment"] for row in PAIR_ROWS})
    with FakeOpenAI(reply=lambda body: stored.get(body["messages"][-1]["content"], "[[C]]")) as fake:
        config = yaml.safe_load((ROOT / "configs/judge/openai_mt_bench_pair.yaml").read_text())
        config["endpoint"].update(base_url=fake.base_url, api_key_env=None)
        config.update(questions=str(QUESTIONS), references=str(REFERENCES), bootstrap=100)
        path = tmp_path / "judge.yaml"
        path.write_text(yaml.safe_dump(config))
        judge = load_config(path, JudgeConfig)
        assert (judge.parser, judge.max_tokens, judge.temperature, judge.parse_retries) == (
            "fastchat",
            2048,
            0,
            0,
        )
        summary = run_judging(judge, PHI3, DPO, tmp_path / "run")
        bodies = list(fake.requests)
    assert len(bodies) == 12  # 6 pairs x 2 orders, nothing re-asked
    assert all(b["max_tokens"] == 2048 and b["temperature"] == 0 and b["model"] == "gpt-4" for b in bodies)
    judgments = {j["prompt_id"]: j for j in map(json.loads, (tmp_path / "run/judgments.jsonl").open())}
    winners = {"model_1": "A", "model_2": "B", "tie": "tie", "error": None}
    for row in PAIR_ROWS:
        orders = judgments[str(row["question_id"])]["orders"]
        assert [o["verdict"] for o in orders] == [winners[row["g1_winner"]], winners[row["g2_winner"]]]
    assert judgments["124"]["verdict"] is None and judgments["124"]["error"] == "BA: unparseable reply"
    assert (summary["errors"], summary["error_orders"], summary["n"]) == (1, 1, 5)


def _grade(**fields) -> GradeConfig:
    base = {"scale": "mt_bench", "questions": str(QUESTIONS), "references": str(REFERENCES)}
    return GradeConfig(**{**base, **fields})


def test_single_grading_messages_equal_fastchats_stored_user_prompts():
    """single-v1, single-math-v1 (with the reference) and their multi-turn forms (phi-3-dpo's own
    conversation): system prompt and user prompt as stored."""
    records = {r["prompt_id"]: r for r in read_generations(DPO)}
    strategy = grade_prompt(_grade(), list(records.values()))
    assert strategy is not None
    for row in SINGLE_ROWS:
        assert row["model"] == "phi-3-dpo"
        record = records[str(row["question_id"]) + (":turn2" if row["turn"] == 2 else "")]
        system = JUDGE_PROMPTS[row["judge"][1]]["system_prompt"]
        assert strategy.messages(record, record["output"]) == [
            {"role": "system", "content": system},
            {"role": "user", "content": row["user_prompt"]},
        ]
    assert {row["judge"][1] for row in SINGLE_ROWS} == {
        "single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn"
    }  # fmt: skip


def test_fastchat_rating_rule():
    """common.one_score_pattern, then its backup; the first match; -1 (None here) without one."""
    assert parse_fastchat_rating("Rating: [[7]] ... later [[2]]") == 7
    assert parse_fastchat_rating("Rating: [8.5]") == 8.5
    assert parse_fastchat_rating("[[0]]") == 0  # FastChat checks no range
    assert parse_fastchat_rating("Rating: 9") is None
    for row in SINGLE_ROWS:
        assert parse_fastchat_rating(row["judgment"]) == row["score"]


def test_single_grade_config_gives_show_results_mean(tmp_path):
    """`lima grade` with the shipped config, the judge replying FastChat's stored judgments: the mean (and the
    per-turn means) equal show_result.py --mode single's over the same rows: the mean of every score != -1."""
    from lima.eval.grade import run_grading

    stored = {row["user_prompt"]: row["judgment"] for row in SINGLE_ROWS}
    with FakeOpenAI(reply=lambda body: stored[body["messages"][-1]["content"]]) as fake:
        config = yaml.safe_load((ROOT / "configs/grade/openai_mt_bench_single.yaml").read_text())
        config["endpoint"].update(base_url=fake.base_url, api_key_env=None)
        config.update(questions=str(QUESTIONS), references=str(REFERENCES))
        path = tmp_path / "grade.yaml"
        path.write_text(yaml.safe_dump(config))
        grade = load_config(path, GradeConfig)
        summary = run_grading(grade, DPO, tmp_path / "run")
        bodies = list(fake.requests)
    assert len(bodies) == len(SINGLE_ROWS)
    assert all(b["max_tokens"] == 2048 and b["temperature"] == 0 and b["model"] == "gpt-4" for b in bodies)
    scores = [row["score"] for row in SINGLE_ROWS if row["score"] != -1]
    assert summary["mean"] == round(sum(scores) / len(scores), 4)
    for turn in (1, 2):
        by_turn = [row["score"] for row in SINGLE_ROWS if row["score"] != -1 and row["turn"] == turn]
        assert summary["by_turn"][str(turn)] == round(sum(by_turn) / len(by_turn), 4)
    assert summary["scale"] == "mt_bench" and summary["failed_samples"] == 0


def _dry_run(cli, tmp_path, *args: str) -> list[dict]:
    files = [f"questions={QUESTIONS}", f"references={REFERENCES}"]
    result = cli(*args, "--out", str(tmp_path / "dry"), "--dry-run", *files)
    assert result.returncode == 0, result.stderr
    return _rows(tmp_path / "dry" / "requests.jsonl")


def test_judge_dry_run_sends_fastchats_messages(tmp_path, cli):
    """`lima judge CONFIG --dry-run` with the shipped FastChat pair judge: every request's messages are
    FastChat's, turn 1 equal to the stored g1/g2_user_prompt (g1: model_1 = phi-3 = A first), turn 2 to
    FastChat's template filled as run_judge_pair does; the system prompt judge_prompts.jsonl's."""
    config = str(ROOT / "configs/judge/openai_mt_bench_pair.yaml")
    requests = _dry_run(cli, tmp_path, "judge", config, "--a", str(PHI3), "--b", str(DPO))
    sent = {(r["prompt_id"], r["order"]): r for r in requests}
    assert len(requests) == len(sent) == 12  # 3 questions x 2 turns x 2 orders
    assert all((r["model"], r["temperature"], r["max_tokens"]) == ("gpt-4", 0.0, 2048) for r in requests)
    for row in PAIR_ROWS:
        system = JUDGE_PROMPTS[row["judge"][1]]["system_prompt"]
        for order, stored in (("AB", row["g1_user_prompt"]), ("BA", row["g2_user_prompt"])):
            messages = sent[(str(row["question_id"]), order)]["messages"]
            assert messages == [{"role": "system", "content": system}, {"role": "user", "content": stored}]
    for qid in ("112", "124", "134"):
        for order, shown in (("AB", (PHI3, DPO)), ("BA", (DPO, PHI3))):
            system, user = _fastchat_pair_prompt(qid, 2, *shown)
            messages = sent[(f"{qid}:turn2", order)]["messages"]
            assert messages == [{"role": "system", "content": system}, {"role": "user", "content": user}]


def test_grade_dry_run_sends_fastchats_single_messages(tmp_path, cli):
    config = str(ROOT / "configs/grade/openai_mt_bench_single.yaml")
    requests = _dry_run(cli, tmp_path, "grade", config, "--gen", str(DPO))
    sent = {r["prompt_id"]: r for r in requests}
    assert len(requests) == len(sent) == len(SINGLE_ROWS)  # one grade per answer
    assert all((r["model"], r["temperature"], r["max_tokens"]) == ("gpt-4", 0.0, 2048) for r in requests)
    for row in SINGLE_ROWS:
        prompt_id = str(row["question_id"]) + (":turn2" if row["turn"] == 2 else "")
        system = JUDGE_PROMPTS[row["judge"][1]]["system_prompt"]
        assert sent[prompt_id]["messages"] == [
            {"role": "system", "content": system},
            {"role": "user", "content": row["user_prompt"]},
        ]


def test_answers_with_braces_are_shown_as_str_format_shows_them():
    """FastChat fills its templates with str.format, in one pass: an answer that holds "{answer_b}" (code does)
    is shown as written, in the reference-guided prompts and in pair-v2's template alike."""
    items = _items()
    strategy = pair_prompt(_judge(), list(items.values()))
    tricky, other = "def f(): return '{answer_b}' % {question}", "plain {ref_answer_1}"
    for qid, name in (("112", "pair-math-v1"), ("134", "pair-v2")):
        question = BY_QID[qid]["turns"][0]
        kwargs = {"ref_answer_1": REFS[qid][0]} if qid in REFS else {}
        expected = JUDGE_PROMPTS[name]["prompt_template"].format(
            question=question, answer_a=tricky, answer_b=other, **kwargs
        )
        assert strategy.messages(items[qid], "AB", tricky, other)[1]["content"] == expected


def test_mt_bench_grading_needs_mt_bench_answers(tmp_path):
    from lima.eval.grade import run_grading

    gen = tmp_path / "gen.jsonl"
    line = {"prompt_id": "p1", "prompt": "Hi", "model": "m", "output": "Hello", "settings": {}}
    gen.write_text(json.dumps(line) + "\n")
    with pytest.raises(LimaError, match=r"^scale: mt_bench grades MT-Bench answers"):
        run_grading(_grade(), gen, tmp_path / "out", dry_run=True)
    with pytest.raises(ValueError, match="remove template"):
        _grade(template="likert_helpfulness.txt")
