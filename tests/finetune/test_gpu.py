"""GPU steps in bf16 on a small real architecture (skipped without CUDA): QLoRA (4-bit NF4) and full."""

from __future__ import annotations

import json

import pytest

from tests.finetune.conftest import records, train_args, write_jsonl

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory):
    from lima.core.tiny import build_tiny_model

    # Llama blocks at a width bitsandbytes 4-bit kernels handle (multiples of 64), 4 layers.
    return build_tiny_model(tmp_path_factory.mktemp("small-llama"), hidden_size=256, num_layers=4, num_heads=4,
                            num_kv_heads=2, intermediate_size=688)  # fmt: skip


@pytest.mark.parametrize("method", ["qlora", "full"])
def test_bf16_training_step(cli, small_llama, tmp_path, method):
    pytest.importorskip("bitsandbytes") if method == "qlora" else None
    data = write_jsonl(tmp_path / "d.jsonl", records(4))
    out = tmp_path / method
    result = cli(*train_args(small_llama, data, None, out, f"method={method}", "precision=bf16", "epochs=1",
                             "batch_size=2"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(r["loss"] == r["loss"] and r["loss"] > 0 for r in log)  # finite, not NaN
    info = json.loads((out / "checkpoints" / "epoch-1" / "lima_checkpoint.json").read_text())
    assert info["method"] == method
    from lima.core.checkpoint import load_for_inference

    model, tokenizer = load_for_inference(out / "checkpoints" / "epoch-1", device="cuda")
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True).to("cuda")  # fmt: skip
    assert model.generate(**ids, max_new_tokens=4, do_sample=False).shape[1] > ids["input_ids"].shape[1]
