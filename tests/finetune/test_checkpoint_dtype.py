"""Full fine-tuning saves epoch checkpoints in the dtype the model's config declares (bf16 for a bf16 model;
it used to save the fp32 master weights: ~32 GB per epoch at 8B); resume states keep fp32 for an exact
resume, and load_for_inference loads the checkpoint in that dtype."""

from __future__ import annotations

import json
import shutil

import torch
from safetensors.torch import load_file

from lima.core.checkpoint import load_for_inference
from tests.conftest import run_cli
from tests.finetune.conftest import THREADS, train_args


def test_full_checkpoint_in_the_declared_dtype(tiny_model_dir, train_files, tmp_path):
    model = tmp_path / "bf16-model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "dtype": "bfloat16"}))  # a bf16 model
    data, _ = train_files
    out = tmp_path / "run"
    result = run_cli(
        *train_args(model, data, None, out, "method=full", "epochs=1", "precision=fp32"), env=THREADS
    )
    assert result.returncode == 0, result.stderr[-3000:]
    epoch = out / "checkpoints" / "epoch-1"
    weights = load_file(epoch / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    assert json.loads((epoch / "config.json").read_text())["dtype"] == "bfloat16"
    (state,) = (out / "resume").glob("checkpoint-*")
    # master weights
    assert {t.dtype for t in load_file(state / "model.safetensors").values()} == {torch.float32}
    loaded, _ = load_for_inference(epoch)
    assert next(loaded.parameters()).dtype == torch.bfloat16
