"""``configs/train/*.yaml``: what ``lima train`` fine-tunes, on what, and how (LIMA's recipe by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lima.core.config import Config

Method = Literal["lora", "qlora", "dora", "full"]


class LoraOptions(Config):
    """Adapter settings for ``lora``, ``qlora`` and ``dora``."""

    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    # "all-linear" = every linear layer of the decoder (never the LM head), as in QLoRA.
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    # Adapt only the top N decoder layers (None: all). Backpropagation then stops at the lowest adapted
    # layer, which makes small CPU runs several times faster.
    top_layers: int | None = Field(None, ge=1)


class OutputOptions(Config):
    """What a run writes besides the per-epoch checkpoints."""

    # A full resume state (weights, optimizer, scheduler, RNG, data position) every N optimizer steps,
    # and always at the end of each epoch; ``--resume`` continues from the newest complete one.
    resume_every_steps: int = Field(50, ge=1)
    keep_resume_states: int = Field(1, ge=1)
    logging_steps: int = Field(1, ge=1)
    tensorboard: bool = True


class TrainConfig(Config):
    """A fine-tuning run. Effective batch = ``batch_size`` x ``gradient_accumulation_steps`` x devices."""

    # Required: an empty or partial file must not train some default model (a hub id, a local model
    # directory, a config-only directory for `lima estimate`, or embedded:smollm2-135m-instruct).
    model: str
    data: Path | None = None  # training records (JSONL); --data overrides
    dev: Path | None = None  # dev records for a loss per epoch; --dev overrides
    method: Method = "lora"
    lora: LoraOptions = LoraOptions()

    # "auto": the model's own chat template when it has one, else LIMA's (roles + a new EOT token).
    chat_template: Literal["auto", "lima", "model"] = "auto"
    eot_token: str = "<|eot|>"
    max_length: int = Field(2048, ge=8)  # longer examples are trimmed (and counted)

    # LIMA: AdamW(0.9, 0.95), weight decay 0.1, lr 1e-5 -> 1e-6 linearly, no warmup, 15 epochs.
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(8, ge=1)  # examples per device per micro-batch
    gradient_accumulation_steps: int = Field(4, ge=1)
    learning_rate: float = Field(1e-5, gt=0)
    min_learning_rate: float = Field(1e-6, ge=0)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.95, ge=0, lt=1)
    weight_decay: float = Field(0.1, ge=0)
    # Not in LIMA's recipe (the paper names no clipping): HF's default, kept for stability; 0 disables it.
    max_grad_norm: float = Field(1.0, ge=0)
    # Residual dropout on each attention/MLP output, linear in the layer index (LIMA: 0.0 -> 0.3).
    dropout_bottom: float = Field(0.0, ge=0, lt=1)
    dropout_top: float = Field(0.3, ge=0, lt=1)

    # "padding_free": a micro-batch is one row of concatenated examples with per-example positions
    # (attention never crosses examples); it saves compute only with a varlen attention kernel
    # (FlashAttention): with sdpa/eager the row's block-diagonal mask costs (sum of lengths)^2.
    # "padded": length-grouped, right-padded batches. "auto": padding_free under FlashAttention, else padded.
    batching: Literal["auto", "padding_free", "padded"] = "auto"
    # Passed to from_pretrained (e.g. flash_attention_2 on GPUs that have flash-attn); None: transformers' default.
    attn_implementation: str | None = None
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 where supported, else fp32
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    # Before loading weights, refuse a run whose estimated step (lima estimate) cannot fit this machine's
    # GPU memory, or its available RAM when training on CPU.
    check_memory: bool = True
    output: OutputOptions = OutputOptions()
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.min_learning_rate > self.learning_rate:
            raise ValueError(
                f"min_learning_rate ({self.min_learning_rate}) must not exceed learning_rate ({self.learning_rate})"
            )
        return self

    @property
    def uses_adapter(self) -> bool:
        return self.method in ("lora", "qlora", "dora")
