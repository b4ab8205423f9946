"""Fixtures for the fine-tuning tests: small record files and one shared tiny LoRA run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

TINY_CONFIG = "configs/train/tiny.yaml"
# Two CPU threads per training subprocess: the machine is shared.
THREADS = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


def records(n: int, multi_turn_every: int = 2) -> list[dict]:
    rows = []
    for i in range(n):
        messages = [
            {"role": "user", "content": f"how do i brew beer number {i}"},
            {
                "role": "assistant",
                "content": "first grind the malt, then boil water and add hop." * (1 + i % 3),
            },
        ]
        if i % multi_turn_every == 1:
            messages += [
                {"role": "user", "content": "why is that?"},
                {"role": "assistant", "content": "because the yeast can ferment the sugar."},
            ]
        if i % 4 == 3:
            messages.insert(0, {"role": "system", "content": "be short."})
        rows.append({"id": f"r{i}", "source": "manual", "messages": messages})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def train_files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ft-data")
    return write_jsonl(root / "train.jsonl", records(8)), write_jsonl(root / "dev.jsonl", records(2))


def train_args(model: Path, data: Path, dev: Path | None, out: Path, *overrides: str) -> list[str]:
    args = ["train", TINY_CONFIG, f"model={model}", "--data", str(data), "--out", str(out), *overrides]
    return [*args, "--dev", str(dev)] if dev else args


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, tiny_model_dir, train_files) -> Path:
    """tiny.yaml (LoRA, LIMA template + EOT, residual dropout) for 2 epochs x 4 steps, uninterrupted."""
    out = tmp_path_factory.mktemp("runs") / "lora"
    data, dev = train_files
    result = run_cli(*train_args(tiny_model_dir, data, dev, out, "output.resume_every_steps=3"), env=THREADS)
    assert result.returncode == 0, result.stderr[-3000:]
    return out
