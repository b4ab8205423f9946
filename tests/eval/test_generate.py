"""`lima generate`: transformers backend on a tiny model (resume, torn lines), prompt sources, openai backend."""

from __future__ import annotations

import json

import pytest
import yaml

from lima.core.config import load_config
from lima.eval.config import GenerateConfig
from lima.eval.generate import run_generation
from lima.eval.inputs import read_prompts
from tests.eval.fake_openai import FakeOpenAI


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_resumes_and_repairs_a_torn_line(tmp_path, tiny_model_dir, cli):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("how to brew coffee\n\nwrite a poem about beer\nexplain the model\n")
    out = tmp_path / "gen.jsonl"
    args = [
        "generate",
        "configs/generate/demo.yaml",
        "decoding.max_new_tokens=6",
        "batch_size=2",
        "--model",
        str(tiny_model_dir),
        "--prompts",
        str(prompts),
        "--out",
        str(out),
    ]
    first = cli(*args, "--limit", "2")
    assert first.returncode == 0, first.stderr
    records = _lines(out)
    assert [r["prompt_id"] for r in records] == ["prompts-1", "prompts-3"]
    assert records[1]["prompt"] == "write a poem about beer" and records[0]["model"] == str(tiny_model_dir)
    settings = records[0]["settings"]
    assert (settings["top_p"], settings["temperature"], settings["repetition_penalty"]) == (0.9, 0.7, 1.2)
    assert 1 <= settings["new_tokens"] <= 6
    with open(out, "a") as fh:
        fh.write('{"prompt_id": "prompts-4", "prompt": "expl')  # a kill in mid-write
    second = cli(*args)
    assert second.returncode == 0, second.stderr
    assert [r["prompt_id"] for r in _lines(out)] == ["prompts-1", "prompts-3", "prompts-4"]
    manifest = json.loads((tmp_path / "gen.run" / "manifest.json").read_text())
    assert (manifest["resumed"], manifest["generated"], manifest["status"]) == (2, 1, "ok")

    other = cli(*args[:-2], "--out", str(out), "--model", "embedded:smollm2-135m-instruct")
    assert (
        other.returncode == 2 and "holds generations of" in other.stderr and "Traceback" not in other.stderr
    )


def test_prompt_sources(shared_data, tmp_path):
    lima = read_prompts(shared_data / "lima" / "lima_test_300.jsonl")
    assert (
        len(lima) == 300
        and lima[0].id == "lima_test_300-1"
        and lima[0].text.startswith("I'm writing a NeurIPS")
    )
    records = tmp_path / "records.jsonl"
    records.write_text(
        json.dumps(
            {
                "id": "r1",
                "source": "x",
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            }
        )
        + "\n"
    )
    [prompt] = read_prompts(records)
    assert (prompt.id, prompt.text, len(prompt.messages)) == ("r1", "hi", 1)


def test_generate_openai_backend_sends_lima_decoding(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\nthree\n")
    with FakeOpenAI(reply=lambda body: f"answer to {body['messages'][-1]['content']}") as fake:
        config_path = tmp_path / "gen.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "backend": "openai",
                    "prompts": str(prompts),
                    "openai_server": "vllm",
                    "endpoint": {"base_url": fake.base_url, "model": "served-model", "api_key_env": None},
                }
            )
        )
        config = load_config(config_path, GenerateConfig)
        out = run_generation(config, tmp_path / "g.jsonl", limit=2)
        run_generation(config, out)  # resumes: only "three" is sent
        bodies = list(fake.requests)
    assert [r["output"] for r in _lines(out)] == ["answer to one", "answer to two", "answer to three"]
    assert len(bodies) == 3
    assert all(
        (b["temperature"], b["top_p"], b["max_tokens"], b["repetition_penalty"]) == (0.7, 0.9, 2048, 1.2)
        for b in bodies
    )
    assert _lines(out)[0]["model"] == "served-model"


@pytest.mark.gpu
def test_generate_on_cuda_in_bf16(tmp_path, tiny_model_dir):
    prompts = tmp_path / "p.txt"
    prompts.write_text("how to brew coffee\nwrite a poem\nexplain the model\n")
    config = load_config(
        "configs/generate/demo.yaml",
        GenerateConfig,
        ["decoding.max_new_tokens=8", "device=cuda", "dtype=bfloat16", "batch_size=3"],
    )
    out = run_generation(config, tmp_path / "g.jsonl", model=str(tiny_model_dir), prompts=prompts)
    records = _lines(out)
    assert [r["prompt_id"] for r in records] == ["p-1", "p-2", "p-3"]
    assert all(1 <= r["settings"]["new_tokens"] <= 8 for r in records)
