"""The training loss: next-token cross-entropy on the labelled (assistant) tokens, without the full logits.

A model's own loss materialises the logits of every token (bf16), an fp32 copy, the log-softmax and their
gradients: at 2,048 tokens and a 128k vocabulary that is ~4 GiB, more than the activations of a checkpointed
8B model. ``chunked_loss`` runs the decoder, then the LM head and cross-entropy on ``CHUNK_BYTES``-sized token
chunks under activation checkpointing, so only one chunk's logits ever exist (forward and backward). On CUDA
with liger-kernel installed, Liger's fused linear cross-entropy does the same in one Triton kernel.

It calls the decoder and the head directly, so it is used only where that is safe: one process (DDP and FSDP
hook the wrapper's or the root module's forward) and a plain linear head (no logit soft-capping or scaling).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100
CHUNK_BYTES = 2**28  # fp32 logits per chunk: 256 MiB (~520 tokens at a 128k vocabulary)
_PLAIN_HEAD_TYPES = {"llama", "mistral", "qwen2", "qwen3", "olmo", "olmo2", "phi3", "smollm3"}


def _parts(model: Any) -> tuple[Any, Any] | None:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) not in _PLAIN_HEAD_TYPES or getattr(config, "logit_scale", None):
        return None
    decoder, head = getattr(base, "model", None), base.get_output_embeddings()
    if decoder is None or head is None:
        return None
    return decoder, head


def chunked_loss_supported(model: Any) -> bool:
    return isinstance(model, torch.nn.Module) and _parts(model) is not None


def _chunk_loss(hidden: torch.Tensor, labels: torch.Tensor, head: Any) -> torch.Tensor:
    logits = head(hidden).float()
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")


def _liger_loss(hidden: torch.Tensor, labels: torch.Tensor, head: Any) -> torch.Tensor | None:
    if not hidden.is_cuda or not isinstance(getattr(head, "weight", None), torch.Tensor):
        return None
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    return liger_fused_linear_cross_entropy(
        hidden,
        head.weight,
        labels,
        bias=getattr(head, "bias", None),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def chunked_loss(model: Any, batch: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
    """Sum of token losses / ``num_items_in_batch`` (default: this batch's labelled tokens), as the model's
    own ``ForCausalLMLoss`` computes it."""
    parts = _parts(model)
    assert parts is not None, "chunked_loss_supported(model) is False"
    decoder, head = parts
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = decoder(**inputs).last_hidden_state
    labels = F.pad(batch["labels"], (0, 1), value=IGNORE_INDEX)[..., 1:].reshape(-1).to(hidden.device)
    hidden = hidden.reshape(-1, hidden.shape[-1])
    total = _liger_loss(hidden, labels, head)
    if total is None:
        vocab = head.out_features if hasattr(head, "out_features") else head.weight.shape[0]
        step = max(16, CHUNK_BYTES // (4 * vocab))
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.shape[0], step):
            total = total + checkpoint(
                _chunk_loss,
                hidden[start : start + step],
                labels[start : start + step],
                head,
                use_reentrant=False,
            )
    if num_items_in_batch is None:
        num_items_in_batch = (labels != IGNORE_INDEX).sum()
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


def training_loss(
    model: Any, batch: dict[str, Any], num_items_in_batch: Any = None, chunked: bool = True
) -> Any:
    """The step's loss: chunked where supported (and ``chunked``), else the model's own."""
    if chunked and chunked_loss_supported(model):
        return chunked_loss(model, batch, num_items_in_batch)
    kwargs = {} if num_items_in_batch is None else {"num_items_in_batch": num_items_in_batch}
    return model(**batch, **kwargs).loss
