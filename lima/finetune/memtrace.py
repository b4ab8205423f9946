"""Live tensor memory of a training step, by term, on real or fake (shape-only) tensors.

``MemoryTrace`` is a ``TorchDispatchMode``: every op output whose storage it has not seen is counted until the
storage dies (a weakref finalizer), under the phase the step is in (activations, logits+loss, optimizer). The
caller registers the parameters that exist before the step (``track``) and re-tags gradients when autograd
accumulates them (``retag``). ``peak`` is the largest total seen and ``peak_breakdown`` its terms. It counts
tensor bytes as an allocator hands them out (no CUDA caching-allocator rounding or fragmentation).

torch's own ``torch.distributed._tools.mem_tracker.MemTracker`` does the same per module, but it registers a
gradient hook on every parameter and so fails on frozen ones (every LoRA/QLoRA base weight).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

TERMS = ("weights", "weight_casts", "trainable", "gradients", "optimizer", "activations", "logits_loss")


def _storage(t: torch.Tensor) -> Any:
    return t.untyped_storage()


class MemoryTrace(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[int, str]] = {}  # id(storage) -> (bytes, term)
        self.totals = dict.fromkeys(TERMS, 0)
        self.phase = "activations"
        self.peak = 0
        self.peak_breakdown = dict(self.totals)
        self._params: set[int] = set()  # storages of parameters (their casts are "weight_casts")

    @property
    def current(self) -> int:
        return sum(self.totals.values())

    def _add(self, t: torch.Tensor, term: str) -> None:
        storage = _storage(t)
        key = id(storage)
        if key in self.live:
            return
        nbytes = storage.nbytes()
        self.live[key] = (nbytes, term)
        self.totals[term] += nbytes
        weakref.finalize(storage, self._free, key)
        total = self.current
        if total > self.peak:
            self.peak = total
            self.peak_breakdown = dict(self.totals)

    def _free(self, key: int) -> None:
        entry = self.live.pop(key, None)
        if entry is not None:
            self.totals[entry[1]] -= entry[0]

    def track(self, t: torch.Tensor, term: str) -> None:
        """Count a tensor made outside the trace (a parameter, a buffer) under ``term``."""
        self._add(t, term)
        if term in ("weights", "trainable"):
            self._params.add(id(_storage(t)))

    def retag(self, t: torch.Tensor, term: str) -> None:
        """Move a counted tensor to ``term`` (a gradient once autograd has accumulated it)."""
        key = id(_storage(t))
        entry = self.live.get(key)
        if entry is None:
            self._add(t, term)
        elif entry[1] != term:
            self.totals[entry[1]] -= entry[0]
            self.totals[term] += entry[0]
            self.live[key] = (entry[0], term)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        term = self.phase
        source = args[0] if args and func is torch.ops.aten._to_copy.default else None
        if (
            isinstance(source, torch.Tensor)
            and id(_storage(source)) in self._params
            and self.phase != "optimizer"
        ):
            term = "weight_casts"  # autocast's per-step low-precision copy of an fp32 weight
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                self._add(t, term)
        return out


def track_model(trace: MemoryTrace, model: torch.nn.Module) -> None:
    """Count the model's parameters and buffers and re-tag each gradient as it is accumulated."""
    for param in model.parameters():
        trace.track(param, "trainable" if param.requires_grad else "weights")
        if param.requires_grad:
            param.register_post_accumulate_grad_hook(lambda p: trace.retag(p.grad, "gradients"))
    for buffer in model.buffers():
        trace.track(buffer, "weights")


def track_logits(trace: MemoryTrace, head: torch.nn.Module) -> Any:
    """From the LM head's forward until the gradient reaches its input, allocations are logits/loss."""

    def enter(module: torch.nn.Module, inputs: tuple) -> None:
        trace.phase = "logits_loss"
        hidden = inputs[0] if inputs else None
        if isinstance(hidden, torch.Tensor) and hidden.requires_grad:
            hidden.register_hook(_leave)

    def _leave(grad: torch.Tensor) -> None:
        trace.phase = "activations"

    return head.register_forward_pre_hook(enter)
