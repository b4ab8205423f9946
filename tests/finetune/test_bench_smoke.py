"""bench/train_throughput.py --smoke: the GPU benchmark's code path on CPU with a tiny Llama (seconds).

Covers what needs no CUDA: the peak-FLOPs table and MFU arithmetic, the LIMA length sampler and the synthetic
examples built to those lengths, both trainers (lima's run_training and TRL's SFTTrainer) under the step timer,
and the JSON/Markdown report. QLoRA runs too: bitsandbytes >= 0.50 quantizes 4-bit NF4 on CPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.finetune.conftest import THREADS

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_table_and_mfu(bench):
    assert bench.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == (989.5, "datasheet dense bf16 (H100)")
    assert bench.peak_bf16_tflops("NVIDIA H100 PCIe")[0] == 756.5
    assert bench.peak_bf16_tflops("NVIDIA H100 NVL")[0] == 835.5
    assert bench.peak_bf16_tflops("NVIDIA H200")[0] == 989.5
    assert bench.peak_bf16_tflops("NVIDIA H200 NVL")[0] == 835.5
    assert bench.peak_bf16_tflops("CPU (x86_64)")[0] is None
    assert bench.peak_bf16_tflops("NVIDIA H100 80GB HBM3", override=500.0) == (500.0, "--peak-tflops")
    # 8B LoRA: 4 x 6.98e9 FLOPs/token at 16,000 tokens/s on 989.5 TFLOP/s = 45.1%
    assert bench.mfu(16_000, 6_979_588_096, "lora", 989.5) == pytest.approx(0.4515, abs=1e-4)
    assert bench.mfu(1_000, 10**9, "full", 6.0) == pytest.approx(1.0)
    assert bench.mfu(1_000, 10**9, "qlora", None) is None


def test_8b_parameter_counts(bench):
    """N for MFU: Llama-3.1-8B has 8,030,261,248 parameters, 6,979,588,096 outside the embedding and LM head."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    for layers, total, non_embedding in (
        (32, 8_030_261_248, 6_979_588_096),
        (8, 2_795_573_248, 1_744_900_096),
    ):
        config = LlamaConfig(**{**bench.LLAMA_8B, "num_hidden_layers": layers}, tie_word_embeddings=False)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        assert bench._param_counts(model) == {"total": total, "non_embedding": non_embedding}


def test_length_sampler(bench):
    data = json.loads(bench.LENGTHS_FILE.read_text())
    lengths = data["lengths"]
    assert len(lengths) == 1000 and data["cap"] == 2048
    assert max(lengths) == 2048 and min(lengths) > 0
    assert 600 < sum(lengths) / len(lengths) < 720  # SmolLM2 tokens per LIMA conversation, capped
    drawn = bench.sample_lengths(lengths, 4000, 2048, seed=1)
    assert drawn == bench.sample_lengths(lengths, 4000, 2048, seed=1)
    assert drawn[0] == 2048 and max(drawn) == 2048
    assert sum(drawn) / len(drawn) == pytest.approx(sum(lengths) / len(lengths), rel=0.05)
    small = bench.sample_lengths(lengths, 100, 128, seed=0)
    assert small[0] == 128 and all(1 <= n <= 128 for n in small)


def test_synthetic_records_hit_lengths(bench):
    from lima.core.record import Example
    from lima.core.tiny import synthetic_corpus, train_tokenizer
    from lima.finetune.data import tokenize_example
    from lima.finetune.template import prepare_tokenizer

    tokenizer = train_tokenizer(synthetic_corpus(seed=0), vocab_size=512)
    prepare_tokenizer(tokenizer, "lima", bench.EOT)
    targets = [40, 64, 100, 513, 2048]
    records = bench.synthetic_records(tokenizer, targets)
    got = [len(tokenize_example(tokenizer, Example.from_dict(r), 10**9)[0]) for r in records]
    assert got == targets


def test_smoke_run_writes_report(tmp_path):
    out = tmp_path / "tt.json"
    env = {**os.environ, **THREADS, "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        str(BENCH),
        "--smoke",
        "--peak-tflops",
        "1",
        "--out",
        str(out),
        "--work",
        str(tmp_path),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"].startswith("smoke") and report["peak_tflops"] == 1.0
    params = report["model"]["params"]
    assert params["adapter"]["layers"] == 2 and params["full"]["layers"] == 1
    assert (
        0 < params["full"]["non_embedding"] < params["adapter"]["non_embedding"] < params["adapter"]["total"]
    )
    # QLoRA runs on CPU as well: bitsandbytes >= 0.50 quantizes there (the qlora extra)
    for method, factor, role in (("lora", 4, "adapter"), ("qlora", 4, "adapter"), ("full", 6, "full")):
        row = report["results"][method]
        for side in ("lima", "trl"):
            r = row[side]
            assert r["status"] == "ok", r
            assert r["timed_steps"] == report["settings"]["timed_steps"][method]
            assert r["timed_tokens"] > 0 and r["tokens_per_s"] > 0
            assert r["tokens_per_s"] == pytest.approx(r["timed_tokens"] / r["timed_s"], rel=0.01)
            assert r["mfu"] == pytest.approx(
                factor * params[role]["non_embedding"] * r["tokens_per_s"] / 1e12
            )
            assert r["mfu_all_params"] == pytest.approx(
                factor * params[role]["total"] * r["tokens_per_s"] / 1e12
            )
            assert r["peak_memory_gib"] > 0
        assert row["speedup"] == pytest.approx(
            row["lima"]["tokens_per_s"] / row["trl"]["tokens_per_s"], abs=1e-3
        )
    # 3 steps x batch 2 for lora/full; qlora (batch 1) times 4x the steps
    assert report["data"]["examples"] == {"lora": 6, "qlora": 5, "full": 6}
    assert report["settings"]["timed_steps"] == {"lora": 2, "qlora": 4, "full": 2}
    table = out.with_suffix(".md").read_text()
    assert "| lora | lima |" in table and "| qlora | trl |" in table and "| full | trl |" in table
    assert not list(tmp_path.glob("bench-gpu-*")), "the work directory (models, runs) is removed"


@pytest.mark.slow  # two training subprocesses (~40 s of CPU)
def test_cpu_adapters_report(tmp_path, tiny_model_dir):
    """--cpu-adapters (QLoRA vs LoRA on CPU, each run in its own process) on the tiny model, one timed step."""
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "qc.json"
    env = {**os.environ, **THREADS, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(BENCH), "--cpu-adapters", "--model", str(tiny_model_dir), "--max-length", "64",
           "--batch-size", "1", "--warmup-steps", "1", "--timed-steps", "1", "--out", str(out), "--work", str(tmp_path)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for method in ("lora", "qlora"):
        r = report["results"][method]
        assert r["status"] == "ok", r
        assert r["step_s"] == pytest.approx(r["timed_s"], rel=1e-2) and r["peak_memory_gib"] > 0
        assert r["load_avg_1m"] >= 0
    ratio = report["qlora_vs_lora"]
    assert ratio["step_time"] == pytest.approx(
        report["results"]["qlora"]["step_s"] / report["results"]["lora"]["step_s"], rel=1e-2
    )
    assert "| qlora |" in out.with_suffix(".md").read_text()
    assert not list(tmp_path.glob("bench-cpu-adapters-*")), "the work directory is removed"
