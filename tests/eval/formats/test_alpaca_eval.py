"""AlpacaEval files: annotations summarised as the leaderboard does, answers and prompts round-trip, the seeded
order switch, and model_outputs.json / the evaluation set used directly as baseline and prompts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lima.eval.formats.alpaca_eval import is_switched_outputs, prompt_id

DATA = Path(__file__).parent / "data" / "alpaca_eval"
RESULTS = DATA / "results" / "tiny-model"
ANNOTATIONS = RESULTS / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"


def test_annotations_summary_is_the_leaderboard_rule(tmp_path, cli):
    """Preferences 1.9, 1.1, 1.5, 2.0, 1.25 (+ a null, a failed annotation kept as an error judgment, and a 2.5,
    skipped): output_2 (tiny-model) is the
    evaluated model. Leaderboard: win_rate = 100·mean(p−1) = 55.0; SE = 100·stdev/√5 with deviations
    .35 −.45 −.05 .45 −.30 -> Σ² = .62, var = .155 -> 100·√(.031); n_wins 2 (p > 1.5), n_draws 1, n_wins_base 2;
    discrete_win_rate (2 + ½)/5 = 50."""
    out = tmp_path / "judgments.jsonl"
    result = cli("import", "alpaca_eval", str(ANNOTATIONS), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["kind"], counts["converted"], counts["skipped"]) == ("judgments", 6, 1)
    assert counts["skipped_by_reason"] == {"preference outside [1, 2]": 1}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # the null preference (row 5) is an error judgment: counted in `errors`, out of the win rates, and kept for
    # AlpacaEval's LC win rate, which scales lengths and averages its predictions over every row
    failed = [j for j in lines if j["verdict"] is None]
    assert len(failed) == 1 and failed[0]["error"] == "null preference (failed annotation)"
    assert failed[0]["meta"]["alpaca_eval_index"] == 5 and "preference" not in failed[0]
    assert [j["meta"]["alpaca_eval_index"] for j in lines] == [0, 1, 2, 3, 4, 5]
    assert {(j["model_a"], j["model_b"]) for j in lines} == {("tiny-model", "gpt4_1106_preview")}
    assert (
        lines[0]["output_a"] == "Tiny 0."
        and lines[0]["meta"]["annotator"] == "weighted_alpaca_eval_gpt4_turbo"
    )

    summary = json.loads(cli("summarize", str(out), "--json").stdout)
    assert (summary["n"], summary["wins"], summary["ties"], summary["losses"]) == (5, 2, 1, 2)
    assert (summary["prompts"], summary["errors"]) == (6, 1)
    assert summary["soft_win_rate"] == pytest.approx(55.0, abs=1e-9)
    assert summary["soft_standard_error"] == pytest.approx(100 * math.sqrt(0.031), abs=1e-9)
    assert summary["win_rate"] == 50.0
    assert summary["standard_error"] == pytest.approx(100 * 0.5 / math.sqrt(5), abs=1e-9)
    low, high = summary["soft_ci95"]
    assert low < 55.0 < high


def test_model_outputs_and_prompts_round_trip(tmp_path, cli):
    gen = tmp_path / "gen.jsonl"
    assert (
        cli("import", "alpaca_eval", str(RESULTS / "model_outputs.json"), "--out", str(gen)).returncode == 0
    )
    records = [json.loads(line) for line in gen.read_text().splitlines()]
    source = json.loads((RESULTS / "model_outputs.json").read_text())
    assert [r["prompt"] for r in records] == [s["instruction"] for s in source]
    assert [r["prompt_id"] for r in records] == [prompt_id(s["instruction"]) for s in source]
    assert records[0]["model"] == "tiny-model" and records[0]["meta"] == {
        "dataset": "koala",
        "alpaca_eval_index": 0,
    }
    back = tmp_path / "model_outputs.json"
    assert cli("export-generations", "alpaca_eval", str(gen), "--out", str(back)).returncode == 0
    assert json.loads(back.read_text()) == source

    prompts = tmp_path / "prompts.jsonl"
    result = cli(
        "import", "alpaca_eval", str(DATA / "alpaca_eval.json"), "--kind", "prompts", "--out", str(prompts)
    )
    assert result.returncode == 0, result.stderr
    again = tmp_path / "alpaca_eval.json"
    assert cli("export-generations", "alpaca_eval", str(prompts), "--out", str(again)).returncode == 0
    assert json.loads(again.read_text()) == json.loads((DATA / "alpaca_eval.json").read_text())


# Seven instructions of AlpacaEval's evaluation set whose published annotation (results/OpenHermes-2.5-Mistral-7B/
# weighted_alpaca_eval_gpt4_turbo/annotations.json) shows the order switch: the annotator's top token is "M" (the
# output shown second, "m" being the first: logprob_parser's numerator, "the first output is better") and yet the
# stored preference is ~1.0 (output_1, the baseline, better) — or "m" at p=.38 with preference 1.3775 — which only
# fits if output_1 was shown second, i.e. the pair was switched.
SWITCHED_IN_PUBLISHED_ANNOTATIONS = [
    "What are the names of some famous actors that started their careers on Broadway?",  # M, 1.0000002
    "How did US states get their names?",  # M, 1.0145
    "I am making mayonnaise, it was starting to thicken but now it has become runny and liquid again, "
    "is there any way to salvage it?",  # M, 1.0000012
    "Why does the second batch of pancakes brown much faster?",  # M, 1.0000027
    "Plan an agenda for the daily standup meetings. Assign a time duration to each topic on the agenda.",  # m .38, 1.3775
    'Answer the following question.\n\nHow do you say "good evening" in French.',  # M, 1.0000016
    "What sound does this make?\n\n\u597d",  # M, 1.000015
]


def test_the_order_switch_is_alpaca_evals_seeded_rule():
    """RandomSwitchTwoColumnsProcessor: random.Random("is_switched_outputs" + instruction + str(seed))
    .choices([False, True], k=1)[0], seed 0 for the default annotator pool. It reproduces the switch seen in
    published annotations on all seven rows (variants — seed 123, no prefix, .choice — miss 3 to 5 of them)."""
    assert all(is_switched_outputs(i) for i in SWITCHED_IN_PUBLISHED_ANNOTATIONS)
    assert not all(is_switched_outputs(i, seed=123) for i in SWITCHED_IN_PUBLISHED_ANNOTATIONS)
    many = [is_switched_outputs(f"instruction {k}") for k in range(400)]
    assert 150 < sum(many) < 250  # a fair coin per instruction


def test_evaluation_set_and_model_outputs_work_as_prompts_and_baseline(tmp_path):
    from lima.eval.inputs import read_generations, read_prompts
    from lima.eval.records import pair_generations

    prompts = read_prompts(DATA / "alpaca_eval.json")
    assert [p.text for p in prompts] == [
        r["instruction"] for r in json.loads((DATA / "alpaca_eval.json").read_text())
    ]
    ours = [{"prompt_id": p.id, "prompt": p.text, "model": "lima", "output": "ours"} for p in prompts]
    baseline = read_generations(RESULTS / "model_outputs.json")
    pairs = pair_generations(ours, baseline, Path("ours.jsonl"), RESULTS / "model_outputs.json")
    assert [b["output"] for _, b in pairs] == [f"Tiny answer {k}: Lima." for k in range(4)]


def test_annotations_round_trip(tmp_path, cli):
    judgments = tmp_path / "j.jsonl"
    assert cli("import", "alpaca_eval", str(ANNOTATIONS), "--out", str(judgments)).returncode == 0
    back = tmp_path / "annotations.json"
    result = cli("export-generations", "alpaca_eval", str(judgments), "--out", str(back))
    assert result.returncode == 0, result.stderr
    usable = [
        r for r in json.loads(ANNOTATIONS.read_text()) if r["preference"] is None or r["preference"] <= 2
    ]
    # the skipped row (2.5) is not a judgment; the failed annotation comes back with its null preference
    assert json.loads(back.read_text()) == usable


def test_judge_against_a_leaderboard_file_on_the_prompts_answered(tmp_path):
    """`lima generate --limit 2` then `lima judge --b model_outputs.json`: the leaderboard file covers every
    instruction; only the two answered ones are judged."""

    from lima.core.config import load_config
    from lima.eval.config import JudgeConfig
    from lima.eval.inputs import read_prompts
    from lima.eval.judge import run_judging
    from tests.eval.fake_openai import FakeOpenAI, judge_config

    ours = tmp_path / "ours.jsonl"
    rows = [
        {"prompt_id": p.id, "prompt": p.text, "model": "lima", "output": "ours"}
        for p in read_prompts(DATA / "alpaca_eval.json")[:2]
    ]
    ours.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeOpenAI(reply=lambda body: "[[A]]") as fake:
        path = judge_config(tmp_path / "judge.yaml", fake, template="mt_bench_pair_v2.txt", parser="mtbench")
        summary = run_judging(
            load_config(path, JudgeConfig), ours, RESULTS / "model_outputs.json", tmp_path / "run"
        )
    assert (summary["n"], summary["model_b"]) == (2, "tiny-model")
    # each judgment keeps AlpacaEval's index of its instruction (its row in the leaderboard file), for the LC
    baseline = [r["instruction"] for r in json.loads((RESULTS / "model_outputs.json").read_text())]
    judged = [json.loads(line) for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    assert [j["meta"]["alpaca_eval_index"] for j in judged] == [baseline.index(j["prompt"]) for j in judged]


def test_lima_generations_of_alpaca_eval_instructions_keep_the_instruction_index():
    """`lima run`'s copy of a leaderboard baseline is a lima file: the AlpacaEval protocol still claims it (ids
    alpaca_eval-<sha1>) and its judged pairs keep the baseline's AlpacaEval index."""
    from lima.eval.protocols import protocol_for_pairs

    a = {"prompt_id": prompt_id("Say hi."), "prompt": "Say hi.", "output": "hi"}
    b = {**a, "output": "Hello!", "meta": {"dataset": "koala", "alpaca_eval_index": 7}}
    protocol = protocol_for_pairs([Path("ours.jsonl"), Path("baseline.jsonl")], [[a], [b]])
    assert protocol is not None and protocol.name == "alpaca_eval"
    assert protocol.pair_meta(a, b) == {"alpaca_eval_index": 7}
    assert protocol.pair_meta(a, a) == {}
