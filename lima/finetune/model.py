"""Model setup for training: precision, 4-bit loading, EOT embeddings, residual dropout, adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lima.core.errors import LimaError
from lima.core.models import load_causal_lm, load_config, load_tokenizer
from lima.finetune.config import TrainConfig
from lima.finetune.dropout import attach_residual_dropout, decoder_layers
from lima.finetune.template import ChatFormat, end_of_turn_ids, prepare_tokenizer


@dataclass
class Prepared:
    model: Any
    tokenizer: Any
    chat_format: ChatFormat
    dtype: torch.dtype
    dropout_schedule: list[float]
    new_token_ids: list[int]
    batching: str  # "padding_free" or "padded", resolved from config.batching and the attention kernel


def resolve_precision(precision: str) -> torch.dtype:
    """The training dtype; a precision the hardware cannot do is a one-line error."""
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return torch.bfloat16 if bf16 else torch.float32
    if precision == "bf16" and not bf16:
        where = "this GPU" if cuda else "CPU training (no CUDA GPU)"
        raise LimaError(f"precision: bf16 is not supported on {where}; use precision=fp32 (or auto)")
    if precision == "fp16" and not cuda:
        raise LimaError("precision: fp16 needs a CUDA GPU; use precision=fp32 (or auto)")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


# bitsandbytes quantizes 4-bit NF4 on a CPU from this version on (before: CUDA only).
BNB_CPU_VERSION = "0.50"


def check_method(config: TrainConfig) -> None:
    """QLoRA needs bitsandbytes (on a CPU, >= 0.50); a missing or too old one is a one-line error."""
    if config.method != "qlora":
        return
    import importlib.metadata

    from packaging.version import Version

    try:
        version = importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        raise LimaError(
            "method: qlora needs bitsandbytes: pip install 'lima-align[qlora]', or use method=lora"
        ) from None
    if not torch.cuda.is_available() and Version(version) < Version(BNB_CPU_VERSION):
        raise LimaError(
            f"method: qlora on CPU needs bitsandbytes >= {BNB_CPU_VERSION} (found {version}): "
            "pip install -U 'lima-align[qlora]', or use method=lora"
        )


def quantization_config(dtype: torch.dtype):
    """QLoRA's base: 4-bit NF4 with double quantization; compute in bf16 on GPUs (fp32 training there is
    rare and slow in 4-bit) and in the training dtype, fp32, on CPU."""
    from transformers import BitsAndBytesConfig

    compute = dtype if dtype != torch.float32 or not torch.cuda.is_available() else torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def quantized_base_fingerprint(model: nn.Module) -> dict[str, Any]:
    """Count, bytes and SHA-256 of the 4-bit (``Params4bit``) base weights: the manifest records it before and
    after training, so a QLoRA run shows that its frozen base stayed bit-identical (a few seconds at 8B)."""
    import hashlib

    from bitsandbytes.nn import Params4bit

    digest = hashlib.sha256()
    count = total = 0
    for param in model.parameters():  # module order; names change under the peft wrapper, bytes must not
        if isinstance(param, Params4bit):
            data = param.data.detach().contiguous().view(torch.uint8).cpu().numpy()
            digest.update(memoryview(data))
            count += 1
            total += data.nbytes
    return {"params4bit": count, "bytes": total, "sha256": digest.hexdigest()}


def init_new_rows_to_mean(model: nn.Module, new_ids: list[int], n_reference: int) -> None:
    """New vocabulary rows (input and, if untied, output embeddings) start at the mean of the first
    ``n_reference`` (pre-existing) rows."""
    with torch.no_grad():
        seen = set()
        for emb in (model.get_input_embeddings(), model.get_output_embeddings()):
            if emb is None or id(emb.weight) in seen:
                continue
            seen.add(id(emb.weight))
            weight = emb.weight
            weight[new_ids] = weight[:n_reference].float().mean(dim=0, keepdim=True).to(weight.dtype)


def _module_name(model: nn.Module, target: nn.Module) -> str:
    return next(name for name, module in model.named_modules() if module is target)


def _peft_config(config: TrainConfig, model: nn.Module, new_token_ids: list[int]):
    from peft import LoraConfig

    trainable_tokens: Any = None
    if new_token_ids:
        # Only the new rows are trained (peft TrainableTokens), not whole embedding matrices as with
        # modules_to_save: for a 128k vocabulary that saves ~2 GB of optimizer state and adapter size.
        inp, out = model.get_input_embeddings(), model.get_output_embeddings()
        tied = out is None or out.weight is inp.weight
        trainable_tokens = (
            new_token_ids
            if tied
            else {_module_name(model, inp): new_token_ids, _module_name(model, out): new_token_ids}
        )
    layers = None
    targets: list[str] | str = config.lora.target_modules
    if config.lora.top_layers is not None:
        n_layers = model.config.num_hidden_layers
        layers = list(range(max(0, n_layers - config.lora.top_layers), n_layers))
        if targets == "all-linear":  # peft needs explicit names together with layers_to_transform
            targets = sorted({n.rsplit(".", 1)[-1] for n, m in decoder_layers(model)[0].named_modules()
                              if isinstance(m, nn.Linear)})  # fmt: skip
    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=targets,
        use_dora=config.method == "dora",
        layers_to_transform=layers,
        trainable_token_indices=trainable_tokens,
        task_type="CAUSAL_LM",
    )


def planned_batching(config: TrainConfig, attention: str | None = None) -> str:
    """``config.batching`` with ``auto`` resolved: padding-free under a FlashAttention kernel, else padded."""
    if config.batching != "auto":
        return config.batching
    attention = attention if attention is not None else config.attn_implementation or ""
    return "padding_free" if "flash" in attention else "padded"


def prepare_model(config: TrainConfig, device: Any = None) -> Prepared:
    """Load tokenizer and model as configured, ready for the trainer. Under a multi-process launch, call it
    after the TrainingArguments exist: the process group is then up (FSDP's RAM-efficient loading reads
    the rank from it), a DeepSpeed ZeRO-3 config is registered (weights load partitioned), and ``device`` is
    this rank's device (a 4-bit base is placed there, not on cuda:0)."""
    check_method(config)
    dtype = resolve_precision(config.precision)
    tokenizer = load_tokenizer(config.model, trust_remote_code=config.trust_remote_code)
    chat_format = prepare_tokenizer(tokenizer, config.chat_template, config.eot_token)

    kwargs: dict[str, Any] = {"dtype": weight_dtype(config, dtype)}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    if config.method == "qlora":
        kwargs["quantization_config"] = quantization_config(dtype)
        kwargs["device_map"] = {"": device if device is not None else torch.cuda.current_device()} \
            if torch.cuda.is_available() else "cpu"  # fmt: skip
    _say_how_weights_load(device)
    declared = getattr(load_config(config.model, trust_remote_code=config.trust_remote_code), "dtype", None)
    model = load_causal_lm(config.model, trust_remote_code=config.trust_remote_code, **kwargs)
    if isinstance(declared, str):
        declared = getattr(torch, declared, None)
    model._lima_declared_dtype = declared if isinstance(declared, torch.dtype) else torch.float32
    model, new_token_ids, schedule, batching = adapt_model(
        model, config, len(tokenizer), chat_format.added_tokens
    )
    if config.lora.top_layers is not None and new_token_ids and config.uses_adapter:
        print(f"note: lora.top_layers={config.lora.top_layers}: the new {chat_format.eot_token} row trains in the "
              "LM head only; its input-embedding row stays at its initialisation (training it would backpropagate "
              "through every layer)")  # fmt: skip
    stop_ids = end_of_turn_ids(tokenizer, chat_format)
    model_config = model.get_base_model() if hasattr(model, "get_base_model") else model
    model_config.generation_config.eos_token_id = stop_ids
    model_config.generation_config.pad_token_id = tokenizer.pad_token_id
    model_config.config.pad_token_id = tokenizer.pad_token_id
    return Prepared(model, tokenizer, chat_format, dtype, schedule, new_token_ids, batching)


def _say_how_weights_load(device: Any) -> None:
    """Under a multi-process launch, one line per rank: is the process group up as its weights load?"""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch.distributed as dist

    up = dist.is_available() and dist.is_initialized()
    rank = os.environ.get("RANK", "0")
    print(f"rank {rank}: loading weights with the process group {'up' if up else 'NOT up'}, device {device}")


def declared_dtype(model: Any) -> torch.dtype:
    """The dtype the model's own config declares (``torch_dtype``), fp32 when it declares none."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    declared = getattr(base, "_lima_declared_dtype", None)
    return declared if isinstance(declared, torch.dtype) else torch.float32


def weight_dtype(config: TrainConfig, dtype: torch.dtype) -> torch.dtype:
    """Full fine-tuning keeps fp32 master weights (bf16/fp16 autocast does the compute); adapters train on a
    frozen base held in the compute dtype."""
    return torch.float32 if config.method == "full" else dtype


def adapt_model(
    model: Any, config: TrainConfig, vocab_size: int, added_tokens: int
) -> tuple[Any, list[int], list[float], str]:
    """Everything ``prepare_model`` does to a loaded model: new EOT rows, residual dropout, adapters.
    ``lima estimate`` runs it on a weightless (meta) model, so what it measures is what trains."""
    new_token_ids: list[int] = []
    if added_tokens:
        n_reference = vocab_size - added_tokens
        if vocab_size > model.get_input_embeddings().weight.shape[0]:
            # Not padded to a multiple of 64 (pad_to_multiple_of): the padding rows would be real logits, outside
            # the tokenizer, frozen at their random init under adapters (tiny model: loss +0.116 = log(576/513)).
            model.resize_token_embeddings(vocab_size, mean_resizing=False)
        new_token_ids = list(range(n_reference, vocab_size))
        init_new_rows_to_mean(model, new_token_ids, n_reference)
    model.config.use_cache = False

    batching = planned_batching(config, str(getattr(model.config, "_attn_implementation", "") or ""))
    schedule = attach_residual_dropout(model, config.dropout_bottom, config.dropout_top)

    if config.uses_adapter:
        from peft import get_peft_model

        from lima.finetune import tokens

        tokens.install()  # the new EOT rows train without 1 GiB copies of the embedding and head at 8B
        # QLoRA: peft's prepare_model_for_kbit_training is not used: it upcasts the embedding and the LM
        # head to fp32 (+2.1 GB at 8B); they stay in the compute dtype, frozen like the rest of the base.
        for param in model.parameters():
            param.requires_grad_(False)
        top_only = config.lora.top_layers is not None
        if config.gradient_checkpointing and not top_only:
            model.enable_input_require_grads()  # checkpointed blocks need a grad-carrying input under LoRA

        model = get_peft_model(model, _peft_config(config, model, new_token_ids))
        if top_only and new_token_ids:
            # A trainable input row of EOT would pull backpropagation through every layer, which top_layers
            # exists to avoid: the row is trained in the (untied) LM head only, the input row keeps its mean
            # initialisation (tied embeddings: the shared row learns from the head's gradient).
            model.get_input_embeddings().register_forward_hook(_no_grad_below)
    return model, new_token_ids, schedule, batching


def _no_grad_below(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    return output.detach()
