"""Bad input to ``lima train``: one clear line, exit code 2, no traceback, no checkpoint claimed complete."""

from __future__ import annotations

import json

import pytest

from tests.finetune.conftest import THREADS, TINY_CONFIG, records, train_args, write_jsonl


def _fails(result, *needles: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in result.stderr, result.stderr[-2000:]
    return message


@pytest.fixture
def good(tmp_path):
    return write_jsonl(tmp_path / "good.jsonl", records(2))


@pytest.mark.parametrize(
    ("installed", "needles"),
    [(None, ["needs bitsandbytes", "method=lora"]), ("0.49.0", [">= 0.50", "found 0.49.0", "method=lora"])],
)
def test_qlora_without_a_cpu_capable_bitsandbytes_names_the_fix(monkeypatch, installed, needles):
    import importlib.metadata

    import torch

    from lima.core.errors import LimaError
    from lima.finetune.config import TrainConfig
    from lima.finetune.model import check_method

    def version(name):
        if installed is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(LimaError) as error:
        check_method(TrainConfig(model="m", method="qlora"))
    assert all(needle in str(error.value) for needle in needles), str(error.value)


def test_bf16_on_cpu(cli, tiny_model_dir, good, tmp_path):
    _fails(cli(*train_args(tiny_model_dir, good, None, tmp_path / "b", "precision=bf16"), env=THREADS),
           "bf16", "precision=fp32")  # fmt: skip


def test_invalid_record_names_file_and_line(cli, tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(records(1)[0]) + "\n" + '{"id": "x", "source": "m", "messages": []}\n')
    _fails(cli(*train_args(tiny_model_dir, bad, None, tmp_path / "o")), f"{bad}:2", "messages")
    assert not (tmp_path / "o").exists()  # rejected before anything was written


@pytest.mark.parametrize(
    ("setup", "needles"),
    [
        ("missing", ["no such file"]),
        ("empty", ["holds no records"]),
        ("model", ["no such local path"]),
        ("config", ["learning_rat", "did you mean"]),
    ],
)
def test_other_bad_inputs(cli, tiny_model_dir, good, tmp_path, setup, needles):
    data, extra, model = good, [], str(tiny_model_dir)
    if setup == "missing":
        data = tmp_path / "nope.jsonl"
    elif setup == "empty":
        data = tmp_path / "empty.jsonl"
        data.write_text("\n")
    elif setup == "model":
        model = str(tmp_path / "no-model")
    else:
        extra = ["learning_rat=1e-4"]
    args = ["train", TINY_CONFIG, f"model={model}", "--data", str(data), "--out", str(tmp_path / "o"), *extra]
    _fails(cli(*args, env=THREADS), *needles)
    assert not (tmp_path / "o" / "checkpoints").exists()


def test_examples_longer_than_max_length_are_trimmed_and_counted(cli, tiny_model_dir, good, tmp_path):
    out = tmp_path / "t"
    result = cli(*train_args(tiny_model_dir, good, None, out, "max_length=30", "epochs=1"), env=THREADS)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads((out / "manifest.json").read_text())["data_stats"]["train"]
    assert stats["trimmed"] >= 1 and stats["max_length_seen"] == 30
    assert "trimmed" in result.stdout
