"""``lima export``: a checkpoint (adapter or full) -> one plain HF model directory (merged safetensors)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lima.core.checkpoint import CHECKPOINT_INFO, checkpoint_info, load_for_inference
from lima.core.errors import LimaError
from lima.core.io import write_json
from lima.core.manifest import RunManifest


def find_checkpoint(run_dir: Path) -> Path:
    """``run_dir`` itself when it is a checkpoint, else the run's last epoch checkpoint."""
    if checkpoint_info(run_dir) is not None:
        return run_dir
    epochs = sorted(
        (p for p in (run_dir / "checkpoints").glob("epoch-*") if checkpoint_info(p) is not None),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    if not epochs:
        raise LimaError(
            f"{run_dir}: no complete checkpoint (checkpoints/epoch-<k>/{CHECKPOINT_INFO}); is it a lima train run?"
        )
    return epochs[-1]


def export_checkpoint(run_dir: Path, out: Path | None = None) -> Path:
    """Merge the adapter (if any) into the base weights and write model + tokenizer to ``out``."""
    run_dir = Path(run_dir)
    checkpoint = find_checkpoint(run_dir)
    info = checkpoint_info(checkpoint) or {}
    out = Path(out) if out is not None else run_dir / "export"
    if (out / CHECKPOINT_INFO).exists():
        raise LimaError(f"{out}: already holds an export; choose another --out")
    with RunManifest(out, "export", {"checkpoint": str(checkpoint)}, inputs=[checkpoint]) as manifest:
        model, tokenizer = load_for_inference(checkpoint)
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        tmp = out / ".export.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for item in tmp.iterdir():
            os.replace(item, out / item.name)
        tmp.rmdir()
        # Written last: its presence marks a complete export, loadable like a full checkpoint.
        write_json(out / CHECKPOINT_INFO, {**info, "method": "full", "exported_from": str(checkpoint)})
        manifest.update(outputs={"model": str(out)}, source_method=info.get("method"))
    return out
