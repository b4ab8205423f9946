"""The per-epoch checkpoint directory other stages load (see ``lima.core.checkpoint``).

    checkpoints/epoch-<k>/  adapter (lora/dora/qlora) or full safetensors + config.json (full),
                            tokenizer (with EOT and the chat template used), generation_config.json
                            (eos includes EOT), lima_checkpoint.json

Written into a temp directory and renamed into place, so a killed run never leaves one that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from lima.core.checkpoint import CHECKPOINT_INFO
from lima.core.io import write_json


def _barrier(trainer: Any) -> None:
    trainer.accelerator.wait_for_everyone()


def write_epoch_checkpoint(trainer: Any, final: Path, info: dict[str, Any]) -> Path:
    """Save the trainer's model + tokenizer to ``final`` atomically; returns ``final``."""
    tmp = final.parent / f".{final.name}.tmp"
    main = trainer.is_world_process_zero()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
    _barrier(trainer)
    trainer._epoch_save = True  # in the model's declared dtype (LimaTrainer._save)
    try:
        trainer.save_model(str(tmp))  # gathers FSDP/ZeRO-3 shards; writes on the main process only
    finally:
        trainer._epoch_save = False
    if main:
        model = trainer.accelerator.unwrap_model(trainer.model)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        base.generation_config.save_pretrained(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp / "training_args.bin")
        write_json(tmp / CHECKPOINT_INFO, info)
        if final.exists():  # re-reached after a resume: replace it, never leave neither
            old = final.parent / f".{final.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    _barrier(trainer)
    return final
