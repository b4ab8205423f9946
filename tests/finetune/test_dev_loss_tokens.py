"""dev_loss is a per-token mean over the whole dev set (batch size and batching do not change it), and a
NaN is reported as NaN (HF's evaluation loop averages per-batch means and drops non-finite batches)."""

from __future__ import annotations

import math

import pytest
import torch

from lima.core.config import load_config
from lima.finetune.config import TrainConfig
from tests.finetune.conftest import TINY_CONFIG, records


def _dev_loss(tiny_model_dir, tmp_path, *overrides: str, poison: bool = False) -> float:
    from datasets import Dataset

    from lima.core.record import Example
    from lima.finetune.data import PaddedCollator, PaddingFreeCollator, tokenize_records
    from lima.finetune.model import prepare_model
    from lima.finetune.run import _training_args
    from lima.finetune.trainer import LimaTrainer

    config = load_config(TINY_CONFIG, TrainConfig, [f"model={tiny_model_dir}", *overrides])
    torch.manual_seed(0)
    prepared = prepare_model(config)
    rows, _ = tokenize_records(prepared.tokenizer, [Example(**r) for r in records(5)], 128)
    if poison:  # NaN embedding for a token of the multi-turn examples only: some dev batches are NaN
        token = next(
            t for t in rows[1]["input_ids"] if t not in set(rows[0]["input_ids"]) | set(rows[4]["input_ids"])
        )
        with torch.no_grad():
            (weight,) = [
                p for n, p in prepared.model.named_parameters() if "embed_tokens" in n and "delta" not in n
            ]
            weight[token] = float("nan")
    collator = (PaddingFreeCollator() if prepared.batching == "padding_free"
                else PaddedCollator(prepared.tokenizer.pad_token_id))  # fmt: skip
    trainer = LimaTrainer(
        model=prepared.model, args=_training_args(config, tmp_path, True, prepared.dtype, prepared.batching),
        eval_dataset=Dataset.from_list(rows), data_collator=collator, lr_floor_ratio=0.1,
    )  # fmt: skip
    return trainer.evaluate()["eval_loss"]


def _reference(tiny_model_dir) -> float:
    """Sum of every labelled token's loss / their count, one example at a time, by hand."""
    from lima.core.record import Example
    from lima.finetune.data import tokenize_records
    from lima.finetune.model import prepare_model

    config = load_config(TINY_CONFIG, TrainConfig, [f"model={tiny_model_dir}"])
    torch.manual_seed(0)
    prepared = prepare_model(config)
    prepared.model.eval()
    rows, _ = tokenize_records(prepared.tokenizer, [Example(**r) for r in records(5)], 128)
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            logits = prepared.model(input_ids=torch.tensor([row["input_ids"]])).logits[0, :-1]
            labels = torch.tensor(row["labels"][1:])
            total += torch.nn.functional.cross_entropy(
                logits, labels, ignore_index=-100, reduction="sum"
            ).item()
            count += int((labels != -100).sum())
    return total / count


def test_dev_loss_is_a_per_token_mean(tiny_model_dir, tmp_path):
    expected = _reference(tiny_model_dir)
    losses = [
        _dev_loss(tiny_model_dir, tmp_path / "b1", "batch_size=1", "batching=padded"),
        _dev_loss(tiny_model_dir, tmp_path / "b2", "batch_size=2", "batching=padded"),
        _dev_loss(tiny_model_dir, tmp_path / "pf", "batch_size=2", "batching=padding_free"),
    ]
    assert losses == pytest.approx([expected] * 3, rel=1e-5)


def test_nan_dev_loss_is_not_hidden(tiny_model_dir, tmp_path):
    assert math.isnan(_dev_loss(tiny_model_dir, tmp_path, "batch_size=2", poison=True))
