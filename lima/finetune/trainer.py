"""A thin layer over the HF ``Trainer``: LIMA's schedule, per-epoch checkpoints, JSONL logs, a progress bar.

The HF Trainer already gives exact resume (optimizer, scheduler, RNG and data position), accelerate/FSDP/
DeepSpeed and gradient accumulation with per-token loss normalisation; this module only adds what LIMA needs.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from lima.core.io import read_jsonl_rows as read_jsonl  # our own logs: a torn last line is skipped
from lima.finetune.checkpoints import write_epoch_checkpoint


def _linear_to_floor(step: int, total: int, floor_ratio: float) -> float:
    if total <= 1:
        return 1.0
    return 1.0 - (1.0 - floor_ratio) * min(step, total - 1) / (total - 1)


def linear_to_floor_schedule(optimizer: torch.optim.Optimizer, total_steps: int, floor_ratio: float):
    """No warmup; the lr falls linearly from its peak at step 0 to ``peak * floor_ratio`` at the last step
    (LIMA: 1e-5 -> 1e-6). HF's linear schedule decays to zero instead."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(_linear_to_floor, total=total_steps, floor_ratio=floor_ratio)
    )


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped order drawn from ``seed + epoch`` rather than the global RNG, so a resumed run sees
    exactly the batches the uninterrupted run would have (HF's sampler draws from the global RNG, whose
    state at an epoch start is not restored on resume)."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


class LimaTrainer(Trainer):
    def __init__(self, *args: Any, lr_floor_ratio: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lr_floor_ratio = lr_floor_ratio

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The chunked cross-entropy (``lima.finetune.loss``) in a single process; HF's path otherwise."""
        from lima.finetune.loss import chunked_loss, chunked_loss_supported

        if return_outputs or self.accelerator.num_processes > 1 or not chunked_loss_supported(model):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return chunked_loss(model, inputs, num_items_in_batch if self.model_accepts_loss_kwargs else None)

    _batch_tokens: int | None = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        self._batch_tokens = inputs.pop("num_tokens", None)  # CountingCollator's host-side count
        return super().training_step(model, inputs, num_items_in_batch)

    def _track_num_input_tokens(self, inputs) -> None:
        """No device sync: the collator's count, times the processes (ranks' batches are alike in size)."""
        if self._batch_tokens is not None:
            self.state.num_input_tokens_seen += self._batch_tokens * self.args.world_size

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """``eval_loss`` = the dev set's summed token loss / its labelled tokens, whatever the batch size or
        batching (HF averages per-batch means, and drops non-finite batches: a diverged model would report a
        finite loss). Every process sums its shard; the sums are added across processes."""
        from lima.finetune.data import IGNORE_INDEX
        from lima.finetune.loss import training_loss

        dataloader = self.get_eval_dataloader(eval_dataset)
        model = self.model_wrapped if self.model_wrapped is not None else self.model
        was_training = model.training
        model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.args.device)  # loss sum, labelled tokens
        with torch.no_grad():
            for batch in dataloader:
                batch.pop("num_tokens", None)
                batch = self._prepare_inputs(batch)
                tokens = (batch["labels"][..., 1:] != IGNORE_INDEX).sum()
                with self.compute_loss_context_manager():
                    # num_items_in_batch=1: the model's own loss and the chunked one both return the sum
                    loss = training_loss(
                        model, batch, num_items_in_batch=1, chunked=self.accelerator.num_processes == 1
                    )
                total += torch.stack([loss.double(), tokens.double()])
        total = self.accelerator.reduce(total, reduction="sum")
        model.train(was_training)
        metrics = {
            f"{metric_key_prefix}_loss": (total[0] / total[1]).item() if total[1] > 0 else float("nan")
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if self.lr_scheduler is None:
            self.lr_scheduler = linear_to_floor_schedule(
                optimizer or self.optimizer, num_training_steps, self.lr_floor_ratio
            )
        return self.lr_scheduler

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochSeededLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            lengths=dataset[self.args.length_column_name],
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    checkpoint_dtype: torch.dtype | None = None  # full fine-tuning: epoch checkpoints in the model's dtype
    _epoch_save = False  # set by write_epoch_checkpoint: resume states keep the fp32 master weights

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if not hasattr(model, "peft_config"):
            dtype = self.checkpoint_dtype if self._epoch_save else None
            if dtype is None:
                return super()._save(output_dir, state_dict)
            state_dict = state_dict if state_dict is not None else model.state_dict()
            state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
            super()._save(output_dir, state_dict)
            config_file = Path(output_dir or self.args.output_dir) / "config.json"
            if self.args.should_save and config_file.is_file():  # save_pretrained wrote the params' fp32
                config = json.loads(config_file.read_text())
                config["dtype"] = str(dtype).removeprefix("torch.")
                config_file.write_text(json.dumps(config, indent=2) + "\n")
            return None
        if not self.args.should_save:
            return None
        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        # The new EOT rows live in the adapter (trainable tokens); peft would otherwise save the whole
        # resized embedding matrix (and the LM head) because the vocabulary grew.
        model.save_pretrained(output_dir, state_dict=state_dict, save_embedding_layers=False)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        return None


def _append_jsonl(path: Path, obj: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(obj) + "\n")
        fh.flush()


def truncate_jsonl(path: Path, max_step: int) -> None:
    """Drop log lines past ``max_step`` (written after the resume state we continue from)."""
    from lima.core.io import atomic_open

    rows = [r for r in read_jsonl(path) if r.get("step", r.get("global_step", 0)) <= max_step]
    if path.exists():
        with atomic_open(path) as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)


class LogCallback(TrainerCallback):
    """``train_log.jsonl`` (one line per logged step) and a tqdm bar with loss and tokens/s."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / "train_log.jsonl"
        self.bar: Any = None
        self._last: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step",
                            dynamic_ncols=True)  # fmt: skip
        self._last = (time.perf_counter(), state.num_input_tokens_seen)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now, tokens = time.perf_counter(), state.num_input_tokens_seen
        assert self._last is not None
        elapsed = max(now - self._last[0], 1e-9)
        tokens_per_s = (tokens - self._last[1]) / elapsed
        self._last = (now, tokens)
        row = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 6),
            "loss": logs["loss"],
            "lr": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_per_s": round(tokens_per_s, 1),
        }
        _append_jsonl(self.path, row)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{tokens_per_s:,.0f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EpochCheckpointCallback(TrainerCallback):
    """At each epoch end: a resume state, the dev loss, then ``checkpoints/epoch-<k>`` and ``epochs.jsonl``."""

    def __init__(self, out_dir: Path, info: dict[str, Any], has_dev: bool) -> None:
        self.out_dir = out_dir
        self.info = info  # base_model, method, eot_token, chat_template
        self.has_dev = has_dev
        self.trainer: LimaTrainer | None = None
        self._pending: int | None = None

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_save = True  # a resume state at every epoch boundary
        epoch = round(state.epoch or 0)
        if self.has_dev:
            self._pending = epoch  # written once the dev loss is known (on_evaluate runs next)
        else:
            self._write(epoch, state, None)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._pending is not None:
            self._write(self._pending, state, (metrics or {}).get("eval_loss"))
            self._pending = None

    def _write(self, epoch: int, state, dev_loss: float | None) -> None:
        assert self.trainer is not None
        if dev_loss is not None and not math.isfinite(dev_loss):
            if state.is_world_process_zero:
                print(f"warning: epoch {epoch}: dev_loss is {dev_loss} (diverged?); recorded as null")
            dev_loss = None  # JSON has no NaN; checkpoint selection skips epochs without a dev loss
        path = write_epoch_checkpoint(
            self.trainer, self.out_dir / "checkpoints" / f"epoch-{epoch}",
            {**self.info, "epoch": epoch, "global_step": state.global_step, "dev_loss": dev_loss},
        )  # fmt: skip
        if state.is_world_process_zero:
            losses = [
                r["loss"]
                for r in read_jsonl(self.out_dir / "train_log.jsonl")
                if epoch - 1 < r["epoch"] <= epoch + 1e-6 and r["step"] <= state.global_step
            ]
            train_loss = sum(losses) / len(losses) if losses else None
            _append_jsonl(self.out_dir / "epochs.jsonl", {
                "epoch": epoch, "global_step": state.global_step, "train_loss": train_loss,
                "dev_loss": dev_loss,
                "checkpoint": str(path),
            })  # fmt: skip


KILL_AT_STEP_ENV = "LIMA_TEST_KILL_AT_STEP"


class _KillAtStep(TrainerCallback):
    """Fault injection for the resume tests: SIGKILL this process (no cleanup at all) after step N."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def fault_injection() -> list[TrainerCallback]:
    step = os.environ.get(KILL_AT_STEP_ENV)
    return [_KillAtStep(int(step))] if step else []
