"""QLoRA on CPU through the real CLI: bitsandbytes >= 0.50 quantizes the base to 4-bit NF4 without a GPU.

The run is started from the model's parent directory with a *relative* model path, so the same run also
checks that a checkpoint records a base that resolves from anywhere (exported here from the repository root).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lima.core.checkpoint import load_for_inference
from tests.conftest import ROOT, run_cli
from tests.finetune.conftest import THREADS, TINY_CONFIG

pytest.importorskip("bitsandbytes", reason="QLoRA needs the qlora extra: pip install -e '.[qlora]'")


@pytest.fixture(scope="module")
def qlora_run(tmp_path_factory, tiny_model_dir, train_files) -> Path:
    out = tmp_path_factory.mktemp("qlora") / "run"
    data, dev = train_files
    result = run_cli(
        "train", str(ROOT / TINY_CONFIG), f"model={tiny_model_dir.name}", "method=qlora", "epochs=1",
        "--data", str(data), "--dev", str(dev), "--out", str(out), env=THREADS, cwd=tiny_model_dir.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _fresh_4bit_base(model_dir: Path):
    """The tiny base quantized here, independently of the run, with QLoRA's settings."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=torch.float32)  # fmt: skip
    return AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=config, device_map="cpu")


def test_qlora_trains_lora_on_a_frozen_4bit_base(qlora_run, tiny_model_dir):
    from bitsandbytes.nn import Params4bit

    from lima.finetune.model import quantized_base_fingerprint

    manifest = json.loads((qlora_run / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["config"]["method"] == "qlora"
    base = _fresh_4bit_base(tiny_model_dir)
    n_linear = sum(isinstance(p, Params4bit) for p in base.parameters())
    assert n_linear == 2 * 7  # q, k, v, o, gate, up, down in each of the 2 layers: really 4-bit
    quantized = manifest["quantized_base"]
    # The run's base is exactly a fresh NF4 quantization of the model, and training left its bytes alone.
    assert quantized["before"] == quantized_base_fingerprint(base)
    assert quantized["after"] == quantized["before"] and quantized["unchanged"] is True
    assert quantized["before"]["params4bit"] == n_linear and quantized["before"]["bytes"] > 0
    log = [json.loads(line) for line in (qlora_run / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(0 < r["loss"] < 100 for r in log)  # finite losses
    ckpt = qlora_run / "checkpoints" / "epoch-1"
    adapter = load_file(ckpt / "adapter_model.safetensors")
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert len(lora_b) == n_linear and all(t.abs().sum() > 0 for t in lora_b)  # B starts at zero: trained
    info = json.loads((ckpt / "lima_checkpoint.json").read_text())
    assert info["method"] == "qlora" and info["dev_loss"] is not None


def test_qlora_adapter_loads_and_generates(qlora_run):
    model, tokenizer = load_for_inference(qlora_run / "checkpoints" / "epoch-1")
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "how do i brew beer"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)  # fmt: skip
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_checkpoint_records_a_base_that_resolves_from_anywhere(qlora_run, tiny_model_dir, tmp_path):
    info = json.loads((qlora_run / "checkpoints" / "epoch-1" / "lima_checkpoint.json").read_text())
    assert info["base_model"] == str(tiny_model_dir.resolve())  # given as a path relative to the run's cwd
    result = run_cli("export", str(qlora_run), "--out", str(tmp_path / "export"), env=THREADS, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "export" / "model.safetensors").is_file()
