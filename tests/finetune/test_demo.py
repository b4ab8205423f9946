"""demo.yaml on the embedded SmolLM2-135M-Instruct with real LIMA records: its own chat template, an adapter that
loads and generates. (The full 32-record demo run is timed by hand: see the README / report.)"""

from __future__ import annotations

import json

import pytest

from lima.core.checkpoint import load_for_inference
from tests.finetune.conftest import THREADS
from tests.finetune.lima_data import write_lima_jsonl


@pytest.mark.slow
def test_demo_config_trains_and_the_adapter_generates(cli, shared_data, tmp_path):
    data = write_lima_jsonl(shared_data, tmp_path / "lima4.jsonl", 4)
    out = tmp_path / "demo"
    result = cli("train", "configs/train/demo.yaml", "--data", str(data), "--out", str(out),
                 "epochs=1", "max_length=64", "batch_size=2", "gradient_accumulation_steps=1", env=THREADS)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = out / "checkpoints" / "epoch-1"
    info = json.loads((ckpt / "lima_checkpoint.json").read_text())
    assert info["chat_template"] == "model" and info["eot_token"] is None
    assert info["base_model"] == "embedded:smollm2-135m-instruct"
    assert len(json.loads((out / "manifest.json").read_text())["residual_dropout"]) == 30
    model, tokenizer = load_for_inference(ckpt)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in model.generation_config.eos_token_id
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Name a coffee brewing method."}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)  # fmt: skip
    out_ids = model.generate(**ids, max_new_tokens=48, do_sample=False)[0, ids["input_ids"].shape[1] :]
    text = tokenizer.decode(out_ids, skip_special_tokens=True)
    assert len(text.split()) >= 3
    # It stops at the end of its turn (or runs to the token limit), never past an end-of-turn token.
    assert im_end not in out_ids.tolist()[:-1]
