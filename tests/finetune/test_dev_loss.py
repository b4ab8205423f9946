"""A diverged run's NaN dev loss: written as JSON null (never a bare NaN), and skipped by checkpoint selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState

from lima.core.io import write_json


def _strict_json(path: Path):
    """json.loads refusing NaN/Infinity, which are not JSON (other tools reject the file)."""
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path}: bare {c}"))


def test_nan_dev_loss_is_recorded_as_null(monkeypatch, tmp_path, capsys):
    from lima.finetune import trainer

    def write_checkpoint(_trainer, final: Path, info: dict) -> Path:  # the real one needs a live Trainer
        final.mkdir(parents=True)
        write_json(final / "lima_checkpoint.json", info)
        return final

    monkeypatch.setattr(trainer, "write_epoch_checkpoint", write_checkpoint)
    callback = trainer.EpochCheckpointCallback(tmp_path, {"base_model": "m", "method": "lora"}, has_dev=True)
    callback.trainer = object()
    state = TrainerState(epoch=1.0, global_step=4)
    callback.on_epoch_end(None, state, TrainerControl())
    callback.on_evaluate(None, state, TrainerControl(), metrics={"eval_loss": float("nan")})
    info = _strict_json(tmp_path / "checkpoints" / "epoch-1" / "lima_checkpoint.json")
    assert info["dev_loss"] is None and info["epoch"] == 1
    (line,) = (tmp_path / "epochs.jsonl").read_text().splitlines()
    assert json.loads(line, parse_constant=lambda c: pytest.fail(c))["dev_loss"] is None
    assert "epoch 1: dev_loss is nan" in capsys.readouterr().out


def test_dev_loss_selection_skips_non_finite_losses_and_says_so(tmp_path):
    from lima.core.errors import LimaError
    from lima.pipeline.config import SelectConfig
    from lima.pipeline.select import select_checkpoint

    ckpts = []
    # epoch 1 as older runs wrote it (raw NaN), epoch 2 as now (null), epoch 4 diverged to inf
    for epoch, loss in enumerate([float("nan"), None, 2.0, float("inf"), 2.5], start=1):
        path = tmp_path / f"epoch-{epoch}"
        path.mkdir()
        (path / "lima_checkpoint.json").write_text(json.dumps({"epoch": epoch, "dev_loss": loss}))
        ckpts.append(path)
    dev = tmp_path / "dev.jsonl"
    dev.write_text("")
    result = select_checkpoint(SelectConfig(strategy="dev_loss"), ckpts, dev, None, None, tmp_path)
    assert result["selected_epoch"] == 3
    assert result["note"] == "epochs [1, 2, 4] skipped: no finite dev_loss"
    assert [row["dev_loss"] for row in result["table"]] == [None, None, 2.0, None, 2.5]
    with pytest.raises(LimaError, match="finite dev loss"):
        select_checkpoint(SelectConfig(strategy="dev_loss"), ckpts[:2], dev, None, None, tmp_path)
