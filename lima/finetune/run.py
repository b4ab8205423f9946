"""``run_training``: records -> per-epoch checkpoints, with a manifest, logs and exact resume.

Use::

    from lima.finetune.run import run_training
    result = run_training(config, Path("runs/demo"), data=Path("train.jsonl"))
    result.final_checkpoint  # runs/demo/checkpoints/epoch-<last>
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import write_json
from lima.core.manifest import RunManifest
from lima.core.models import resolve_model
from lima.finetune.config import TrainConfig

RESUME_DIR = "resume"  # the HF Trainer's output_dir: full resume states (checkpoint-<step>)


def process_rank() -> int:
    """This process's rank under ``accelerate launch``/torchrun (0 when launched alone)."""
    return int(os.environ.get("RANK", "0"))


class MainProcessManifest(RunManifest):
    """The run's manifest, written by rank 0 only; the other ranks of a multi-process launch keep it in memory
    (every rank runs ``run_training``, and they would race on one file)."""

    def write(self) -> None:
        if process_rank() == 0:
            super().write()


@dataclass
class TrainResult:
    out_dir: Path
    checkpoints: list[Path]  # epoch order
    epochs: list[dict[str, Any]]  # epoch, train_loss, dev_loss (+ global_step, checkpoint)
    final_checkpoint: Path
    stats: dict[str, Any] = field(default_factory=dict)


def latest_resume_state(out_dir: Path) -> Path | None:
    """The newest complete resume state (``trainer_state.json`` is written last); drops incomplete ones."""
    root = out_dir / RESUME_DIR
    if not root.is_dir():
        return None
    states = sorted(
        (p for p in root.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    complete = [p for p in states if (p / "trainer_state.json").is_file()]
    for partial in set(states) - set(complete):
        shutil.rmtree(partial, ignore_errors=True)
    return complete[-1] if complete else None


def _step_of(state_dir: Path) -> int:
    return int(state_dir.name.split("-")[-1])


def _check_out_dir(out_dir: Path, resume: bool) -> Path | None:
    if resume:
        state = latest_resume_state(out_dir)
        if state is None and (out_dir / "checkpoints").exists():
            raise LimaError(
                f"{out_dir}: --resume found no resume state under {RESUME_DIR}/; start a new --out"
            )
        if state is not None:
            return state
        if process_rank() == 0:
            print(
                f"--resume: {out_dir} holds no resume state ({RESUME_DIR}/checkpoint-*); starting from step 0"
            )
    elif (out_dir / "checkpoints").exists() or (out_dir / RESUME_DIR).exists():
        raise LimaError(
            f"{out_dir}: already holds a training run; pass --resume to continue it or choose another --out"
        )
    # A run killed before its first resume state leaves log rows that would be averaged into the new epochs.
    if process_rank() == 0:
        for name in ("train_log.jsonl", "epochs.jsonl"):
            (out_dir / name).unlink(missing_ok=True)
    return None


def _training_args(config: TrainConfig, out_dir: Path, has_dev: bool, dtype: Any, batching: str) -> Any:
    import torch
    from transformers import TrainingArguments

    padded = batching == "padded"  # length-grouped sampling
    return TrainingArguments(
        output_dir=str(out_dir / RESUME_DIR),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        adam_beta1=config.adam_beta1,
        adam_beta2=config.adam_beta2,
        max_grad_norm=config.max_grad_norm,
        warmup_steps=0,
        optim="adamw_torch_fused" if torch.cuda.is_available() else "adamw_torch",  # CPU: the tested numbers
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        logging_steps=config.output.logging_steps,
        logging_strategy="steps",
        save_strategy="steps",
        save_steps=config.output.resume_every_steps,
        save_total_limit=config.output.keep_resume_states,
        eval_strategy="epoch" if has_dev else "no",
        prediction_loss_only=True,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="group_by_length" if padded else "random",
        length_column_name="length",
        remove_unused_columns=False,
        # Tokens seen are counted on the host (CountingCollator, LimaTrainer): HF's count and its NaN filter
        # for the logged loss each sync the device after every micro-batch (the filter also hides a NaN loss).
        include_num_input_tokens_seen="no",
        logging_nan_inf_filter=False,
        activation_checkpointing=config.gradient_checkpointing,
        dataloader_num_workers=0,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )


BEFORE_TRAINING = "dev_loss_before_training.json"


def _dev_loss_before_training(trainer, out_dir: Path) -> float | None:
    """The dev loss of the untouched model ("epoch 0"), so a report can show what training changed.

    Measuring must not change the run: every random generator is put back as it was, so the training that
    follows draws exactly what it would have drawn without this evaluation."""
    import random

    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)  # fmt: skip
    try:
        loss = trainer.evaluate().get("eval_loss")
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])
    loss = loss if loss is not None and math.isfinite(loss) else None
    if trainer.args.process_index == 0:
        write_json(out_dir / BEFORE_TRAINING, {"epoch": 0, "global_step": 0, "dev_loss": loss})
    return loss


def dev_loss_before_training(run_dir: Path) -> float | None:
    """What :func:`_dev_loss_before_training` recorded for a run folder, or None."""
    path = Path(run_dir) / BEFORE_TRAINING
    return json.loads(path.read_text()).get("dev_loss") if path.is_file() else None


def _dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list(rows)


def run_training(
    config: TrainConfig,
    out_dir: Path,
    data: Path | None = None,
    dev: Path | None = None,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune as ``config`` says; ``data``/``dev`` override ``config.data``/``config.dev``."""
    from lima.finetune.data import read_training_records

    out_dir = Path(out_dir)
    data = Path(data) if data is not None else config.data
    dev = Path(dev) if dev is not None else config.dev
    if data is None:
        raise LimaError("no training data: pass --data TRAIN.jsonl or set data: in the config")
    config = config.model_copy(update={"data": data, "dev": dev})
    resolve_model(config.model)  # an unknown local path fails here, before anything is written
    resume_state = _check_out_dir(out_dir, resume)
    # Cheap checks first: records, then the method/hardware, before any weights load.
    train_records = read_training_records(data, "training")
    dev_records = read_training_records(dev, "dev") if dev is not None else []
    from lima.finetune.estimate import check_memory

    check_memory(config, world_size=int(os.environ.get("WORLD_SIZE", "1")))

    inputs: list[str | os.PathLike] = [data, *([dev] if dev else [])]
    with MainProcessManifest(out_dir, "train", config, inputs=inputs, seed=config.seed) as manifest:
        result = _train(config, out_dir, train_records, dev_records, resume_state, manifest)
        manifest.update(
            outputs={
                "checkpoints": [str(p) for p in result.checkpoints],
                "final_checkpoint": str(result.final_checkpoint),
            },
            epochs=result.epochs,
            **result.stats,
        )
    return result


def _train(config, out_dir, train_records, dev_records, resume_state, manifest) -> TrainResult:
    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from lima.core.checkpoint import portable_model_spec
    from lima.core.errors import RecordError
    from lima.finetune.data import CountingCollator, PaddedCollator, PaddingFreeCollator, tokenize_records
    from lima.finetune.model import (
        declared_dtype,
        planned_batching,
        prepare_model,
        quantized_base_fingerprint,
        resolve_precision,
    )
    from lima.finetune.trainer import (
        EpochCheckpointCallback,
        LimaTrainer,
        LogCallback,
        fault_injection,
        read_jsonl,
        truncate_jsonl,
    )

    torch.manual_seed(config.seed)
    # The training arguments first: they start the process group and register FSDP/DeepSpeed settings,
    # which from_pretrained reads (ZeRO-3 partitioned init, FSDP's RAM-efficient loading on rank 0 only).
    args = _training_args(config, out_dir, bool(dev_records), resolve_precision(config.precision),
                          planned_batching(config))  # fmt: skip
    prepared = prepare_model(config, device=args.device)
    tokenizer = prepared.tokenizer
    train_rows, train_stats = tokenize_records(tokenizer, train_records, config.max_length)
    dev_rows, dev_stats = tokenize_records(tokenizer, dev_records, config.max_length)
    if not train_rows:
        raise RecordError(
            f"{config.data}: no example has an assistant turn within max_length={config.max_length}; nothing to train on"
        )
    stats = {
        "data_stats": {"train": train_stats.summary(), "dev": dev_stats.summary() if dev_records else None},
        "chat_template": prepared.chat_format.kind,
        "eot_token": prepared.chat_format.eot_token,
        "batching": prepared.batching,
        "residual_dropout": [round(p, 6) for p in prepared.dropout_schedule],
        "trainable_parameters": sum(p.numel() for p in prepared.model.parameters() if p.requires_grad),
    }
    if config.method == "qlora":
        stats["quantized_base"] = {"before": quantized_base_fingerprint(prepared.model)}
    if train_stats.trimmed:
        print(
            f"note: {train_stats.trimmed} training example(s) longer than max_length={config.max_length} trimmed"
        )
    manifest.update(**stats)

    if prepared.batching != planned_batching(config) or (dev_records and not dev_rows):
        args = _training_args(config, out_dir, bool(dev_rows), prepared.dtype, prepared.batching)
    # processes (DDP ranks); effective batch = batch x accumulation x this
    stats["world_size"] = args.world_size
    collator = CountingCollator(
        PaddingFreeCollator()
        if prepared.batching == "padding_free"
        else PaddedCollator(tokenizer.pad_token_id)
    )
    info = {
        "base_model": portable_model_spec(config.model),
        "method": config.method,
        "eot_token": prepared.chat_format.eot_token,
        "chat_template": prepared.chat_format.kind,
        # Epoch checkpoints hold the weights in the dtype the model's config declares (fp32 master weights
        # of full fine-tuning stay in the resume states only); load_for_inference loads in it.
        "dtype": str(declared_dtype(prepared.model)).removeprefix("torch."),
    }
    trainer_dtype = declared_dtype(prepared.model) if config.method == "full" else None
    epoch_cb = EpochCheckpointCallback(out_dir, info, has_dev=bool(dev_rows))
    trainer = LimaTrainer(
        model=prepared.model,
        args=args,
        train_dataset=_dataset(train_rows),
        eval_dataset=_dataset(dev_rows) if dev_rows else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[LogCallback(out_dir), epoch_cb, *fault_injection()],
        lr_floor_ratio=config.min_learning_rate / config.learning_rate,
    )
    epoch_cb.trainer = trainer
    trainer.checkpoint_dtype = trainer_dtype
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # our LogCallback shows loss and tokens/s on one bar
    if config.output.tensorboard and args.process_index == 0:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        trainer.add_callback(TensorBoardCallback(SummaryWriter(log_dir=str(out_dir / "tensorboard"))))

    if resume_state is not None:
        step = _step_of(resume_state)
        if args.process_index == 0:
            for name in ("train_log.jsonl", "epochs.jsonl"):
                truncate_jsonl(out_dir / name, step)
        print(f"resuming from {resume_state} (step {step})")
    if dev_rows and resume_state is None:
        stats["dev_loss_before_training"] = _dev_loss_before_training(trainer, out_dir)
    output = trainer.train(resume_from_checkpoint=str(resume_state) if resume_state else None)
    stats["train_runtime_s"] = round(output.metrics.get("train_runtime", 0.0), 3)
    stats["tokens_seen"] = int(trainer.state.num_input_tokens_seen)
    stats["resumed_from_step"] = _step_of(resume_state) if resume_state else None
    if torch.cuda.is_available():
        stats["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    if config.method == "qlora":
        after = quantized_base_fingerprint(trainer.model)
        stats["quantized_base"].update(after=after, unchanged=after == stats["quantized_base"]["before"])

    epochs = read_jsonl(out_dir / "epochs.jsonl")
    by_epoch = {e["epoch"]: e for e in epochs}  # the last line per epoch wins
    epochs = [by_epoch[k] for k in sorted(by_epoch)]
    checkpoints = [Path(e["checkpoint"]) for e in epochs]
    missing = [str(p) for p in checkpoints if not p.is_dir()]
    if not checkpoints or missing:
        raise LimaError(
            f"{out_dir}: training ended without its epoch checkpoints ({', '.join(missing) or 'none'})"
        )
    stats["global_step"] = trainer.state.global_step
    return TrainResult(out_dir, checkpoints, epochs, checkpoints[-1], stats)
