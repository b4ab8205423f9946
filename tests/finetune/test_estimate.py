"""``lima estimate`` (fake tensors) against the same step on real CPU tensors, and its CLI; the pre-training
memory check and the required ``model`` key (issue #19)."""

from __future__ import annotations

import json
import shutil

import pytest

from lima.core.config import load_config
from lima.finetune.config import TrainConfig
from lima.finetune.estimate import measure_step
from tests.conftest import run_cli
from tests.finetune.conftest import THREADS, TINY_CONFIG, records, write_jsonl


def _config(model, *overrides: str) -> TrainConfig:
    return load_config(TINY_CONFIG, TrainConfig, [f"model={model}", *overrides])


@pytest.mark.parametrize(
    "overrides",
    [
        ("method=lora",),
        ("method=full", "batching=padded"),
        ("method=lora", "gradient_checkpointing=true", "batching=padded", "gradient_accumulation_steps=2"),
    ],
)
def test_fake_step_within_10_percent_of_real_tiny(tiny_model_dir, overrides):
    config = _config(tiny_model_dir, "max_length=96", *overrides)
    fake = measure_step(config, 2, fake=True, device="cpu")
    real = measure_step(config, 2, fake=False, device="cpu")
    assert abs(fake.peak - real.peak) <= 0.10 * real.peak, (fake, real)


@pytest.mark.slow
def test_fake_step_within_10_percent_of_real_embedded_135m(embedded_model_spec):
    config = _config(embedded_model_spec, "max_length=32", "method=lora", "gradient_checkpointing=true")
    fake = measure_step(config, 1, fake=True, device="cpu")
    real = measure_step(config, 1, fake=False, device="cpu")
    assert abs(fake.peak - real.peak) <= 0.10 * real.peak, (fake, real)
    assert fake.breakdown["weights"] > 400 * 2**20  # the 135M base in fp32 dominates


def test_estimate_cli_json_from_config_only_dir(tiny_model_dir, tmp_path):
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(tiny_model_dir / "config.json", config_only / "config.json")  # no weights, no tokenizer
    result = run_cli("estimate", "configs/train/lima_qlora.yaml", f"model={config_only}", "batch_size=1",
                     "max_length=64", "--json", env=THREADS)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["peak_gib"] > 0
    assert set(out["breakdown"]) >= {
        "weights",
        "trainable",
        "gradients",
        "optimizer",
        "activations",
        "logits_loss",
    }
    assert [c["card_gib"] for c in out["cards"]] == [24, 40, 48, 80, 141]
    assert all(c["fits"] and c["largest_micro_batch"] > 1 for c in out["cards"])
    text = run_cli("estimate", "configs/train/lima.yaml", f"model={config_only}", "max_length=64", "--gpus", "8",
                   env=THREADS)  # fmt: skip
    assert text.returncode == 0, text.stderr[-2000:]
    assert "per GPU over 8 GPUs" in text.stdout and "80 GB card: fits" in text.stdout


def test_train_refuses_a_step_that_cannot_fit_this_machine(tmp_path):
    """Issue #19: full fine-tuning of an 8B-shaped model on CPU is refused with the numbers, before any
    weights load (today: it goes on to load them)."""
    data = write_jsonl(tmp_path / "train.jsonl", records(2))
    result = run_cli("train", "configs/train/lima.yaml", "model=configs/models/llama-3.1-8b-shape",
                     "precision=fp32", "--data", str(data), "--out", str(tmp_path / "run"), env=THREADS)  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "memory: one training step" in result.stderr and "GiB of RAM available" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_empty_train_config_is_refused_with_the_missing_key(tmp_path):
    """Issue #19: an empty train config used to validate with every default (and a default model)."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = run_cli("validate", str(empty), "--kind", "train")
    assert result.returncode == 2, result.stdout[-2000:]
    assert "model: required key is missing" in result.stderr
