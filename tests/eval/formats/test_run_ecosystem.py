"""`lima run` with a benchmark's prompt file as test_prompts and a leaderboard model's answers as the baseline
(tiny model, fake judge endpoint), and the shipped example configs' judge prompt kept in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.eval.fake_openai import FakeOpenAI

DATA = Path(__file__).parent / "data"
CASES = {  # test prompts, the leaderboard's answers, pairs judged with test_limit 2
    "alpaca_eval": (
        DATA / "alpaca_eval/alpaca_eval.json",
        DATA / "alpaca_eval/results/tiny-model/model_outputs.json",
        2,
    ),
    "mt_bench": (DATA / "mt_bench/question.jsonl", DATA / "mt_bench/model_answer/gpt-3.5-turbo.jsonl", 4),
    "arena_hard": (DATA / "arena_hard/question.jsonl", DATA / "arena_hard/model_answer/gpt-4-0314.jsonl", 2),
}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(CASES))
def test_run_on_benchmark_prompts_against_leaderboard_answers(tmp_path, tiny_model_dir, cli, fmt):
    prompts, baseline, n = CASES[fmt]
    train = tmp_path / "train.jsonl"
    train.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"t{k}",
                    "source": "test",
                    "messages": [
                        {"role": "user", "content": f"question {k}"},
                        {"role": "assistant", "content": f"answer {k}"},
                    ],
                }
            )
            + "\n"
            for k in range(4)
        )
    )
    with FakeOpenAI(reply=lambda body: "[[A]]") as fake:
        config = {
            "name": f"tiny-{fmt}",
            "data": str(train),
            "train": {
                "config": str(ROOT / "configs/train/demo.yaml"),
                "overrides": {
                    "model": str(tiny_model_dir),
                    "epochs": 1,
                    "max_length": 64,
                    "method": "lora",
                    "chat_template": "lima",
                    "output.tensorboard": False,
                },
            },
            "generate": {
                "config": str(ROOT / "configs/generate/demo.yaml"),
                "overrides": {"decoding.max_new_tokens": 4, "batch_size": 4},
            },
            "judge": {
                "config": str(ROOT / "configs/judge/openai_mtbench.yaml"),
                "overrides": {
                    "endpoint.base_url": fake.base_url,
                    "endpoint.api_key_env": None,
                    "template": "mt_bench_pair_v2.txt",
                    "parse_retries": 0,
                    "bootstrap": 100,
                    # FastChat's pair-v2 family reads the categories from the question file (test_limit 2:
                    # no math question, so no reference file)
                    "questions": str(prompts) if fmt == "mt_bench" else None,
                    "references": None,
                },
            },
            "select": {"strategy": "last"},
            "test_prompts": str(prompts),
            "baselines": [{"name": "leaderboard", "generations": str(baseline)}],
            "report_samples": 1,
            "test_limit": 2,  # the leaderboard file covers every prompt: only the answered ones are judged
        }
        path = tmp_path / "experiment.yaml"
        path.write_text(yaml.safe_dump(config))
        result = cli("run", str(path), "--out", str(tmp_path / "run"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "judge" / "leaderboard" / "summary.json").read_text())
    assert summary["n"] == n and summary["ties"] == n  # "[[A]]" in both orders: position bias, all ties
    assert summary["standard_error"] == 0.0


def test_mt_bench_example_config_uses_fastchats_pair_judge():
    """The example experiment judges with FastChat's MT-Bench pair judge, whose pair-v2 system prompt (sent with
    the pair-v2 template) is FastChat's (tests/eval/formats/test_mt_bench_fastchat.py checks it byte for byte)."""
    config = yaml.safe_load((ROOT / "configs/experiments/mt_bench_lima_7b.yaml").read_text())
    assert config["judge"]["config"] == "configs/judge/openai_mt_bench_pair.yaml"
    assert config["judge"]["overrides"]["questions"] == config["test_prompts"]
    assert config["judge"]["overrides"]["references"].endswith("mt_bench/reference_answer/gpt-4.jsonl")
    judge = yaml.safe_load((ROOT / "configs/judge/openai_mt_bench_pair.yaml").read_text())
    assert (judge["template"], judge["parser"], judge["max_tokens"], judge["parse_retries"]) == (
        "mt_bench_pair_v2.txt",
        "fastchat",
        2048,
        0,
    )
    system = (ROOT / "lima/eval/prompts/mt_bench_pair_v2_system.txt").read_text().strip()
    assert judge["endpoint"]["model"] == "gpt-4" and judge["system_prompt"] == system
    assert "Avoid any position biases" in system
    assert (
        '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.' in system
    )
