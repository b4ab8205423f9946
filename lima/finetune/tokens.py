"""Trainable EOT rows without copying the vocabulary matrices.

peft's ``TrainableTokensLayer`` (how the new EOT rows train under adapters) builds the whole merged matrix,
``base.weight.index_copy(0, ids, deltas)``, on every call: for a 128k x 4096 bf16 head that is a 1 GiB copy per
forward, and its backward is a dense 1 GiB gradient of that copy, of which only the new rows are kept (the
input embedding alike). ``lean_forward`` computes the same values from the frozen base and the few trained
rows: the head's logits with the new columns replaced by ``x @ deltas.T``, the embedding's lookup with the new
ids' rows taken from ``deltas``. It handles a single active, unmerged adapter on a plain ``Embedding`` or
bias-free ``Linear``; anything else goes to peft's own forward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_ORIGINAL = "_lima_original_forward_adapters"


def lean_forward(
    self: Any, x: torch.Tensor, active_adapters: list[str], *args: Any, **kwargs: Any
) -> torch.Tensor:
    original = getattr(type(self), _ORIGINAL)
    base = self.base_layer
    plain_embedding = isinstance(base, nn.Embedding) and base.max_norm is None and not base.sparse
    plain_linear = isinstance(base, nn.Linear) and base.bias is None
    if (
        self.disable_adapters or self.merged or len(active_adapters) != 1 or args or kwargs
        or not (plain_embedding or plain_linear)
    ):  # fmt: skip
        return original(self, x, active_adapters, *args, **kwargs)
    name = active_adapters[0]
    deltas = self.trainable_tokens_delta[name].to(base.weight)
    ids = torch.tensor(self.token_indices[name], device=base.weight.device)
    if plain_linear:
        out = F.linear(x, base.weight)
        return out.index_copy(-1, ids, F.linear(x, deltas))
    if self._get_embed_scale() is not None:
        return original(self, x, active_adapters, *args, **kwargs)
    out = F.embedding(x, base.weight, padding_idx=base.padding_idx)
    match = x.unsqueeze(-1) == ids  # (..., n_new)
    is_new = match.any(-1, keepdim=True)
    rows = F.embedding(match.int().argmax(-1), deltas)
    return torch.where(is_new, rows, out)


def install() -> None:
    """Route peft's trainable-token layers through ``lean_forward`` (idempotent)."""
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    if not hasattr(TrainableTokensLayer, _ORIGINAL):
        setattr(TrainableTokensLayer, _ORIGINAL, TrainableTokensLayer.forward_adapters)
        TrainableTokensLayer.forward_adapters = lean_forward
