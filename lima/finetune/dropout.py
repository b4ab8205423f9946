"""LIMA's layerwise residual dropout for any HF decoder-only model.

Dropout is applied to what each attention and MLP sublayer adds to the residual stream, with p rising
linearly from ``bottom`` (first layer) to ``top`` (last layer). On pre-norm models (Llama, Mistral, Qwen2,
Gemma 1, GPT-NeoX) that is the sublayer's output. Post-norm models (Gemma 2/3, OLMo 2) pass the sublayer's
output through a norm before the residual add (``post_attention_layernorm``, ``post_feedforward_layernorm``):
dropping before that norm is largely undone by it (the kept units are renormalised, so the branch shrinks by
sqrt(1 - p) instead of being rescaled by 1 / (1 - p)), so there the dropout goes on the post-norm's output.
It is implemented as forward hooks, so parameter names and saved checkpoints are unchanged, and it works
under peft wrappers.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lima.core.errors import LimaError

_ATTENTION_NAMES = ("self_attn", "attention", "attn", "self_attention")
_MLP_NAMES = ("mlp", "feed_forward", "ffn")
# Post-norm blocks (Gemma 2/3, OLMo 2): x + post_norm(sublayer(...)). Their norm after the MLP is what tells
# them apart: in Llama-style blocks ``post_attention_layernorm`` is the *pre*-MLP norm.
_POST_NORM_MARKER = "post_feedforward_layernorm"


def linear_schedule(n_layers: int, bottom: float, top: float) -> list[float]:
    """p for each layer, from ``bottom`` at layer 0 to ``top`` at the last layer."""
    if n_layers == 1:
        return [top]
    return [bottom + (top - bottom) * i / (n_layers - 1) for i in range(n_layers)]


class SublayerDropout:
    """A forward hook that drops out a sublayer's output (the first element when it returns a tuple)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not module.training or self.p == 0.0:
            return output
        if isinstance(output, tuple):
            return (nn.functional.dropout(output[0], self.p, training=True), *output[1:])
        return nn.functional.dropout(output, self.p, training=True)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks: the ModuleList with ``num_hidden_layers`` entries."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0 and (n is None or len(module) == n):
            first = module[0]
            if any(hasattr(first, a) for a in _ATTENTION_NAMES) and any(
                hasattr(first, m) for m in _MLP_NAMES
            ):
                return module
    raise LimaError(
        f"residual dropout: cannot find the decoder layers of {type(model).__name__}; "
        "set dropout_bottom=0 dropout_top=0 to train without it"
    )


def _child(layer: nn.Module, names: tuple[str, ...]) -> nn.Module:
    return next(getattr(layer, name) for name in names if isinstance(getattr(layer, name, None), nn.Module))


def is_post_norm(layer: nn.Module) -> bool:
    """True for blocks that normalise each sublayer's output before the residual add (Gemma 2/3, OLMo 2)."""
    return isinstance(getattr(layer, _POST_NORM_MARKER, None), nn.Module)


def residual_branches(layer: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The modules whose outputs are added to the residual stream: (attention branch, MLP branch)."""
    if is_post_norm(layer):
        return layer.post_attention_layernorm, layer.post_feedforward_layernorm
    return _child(layer, _ATTENTION_NAMES), _child(layer, _MLP_NAMES)


def attach_residual_dropout(model: nn.Module, bottom: float, top: float) -> list[float]:
    """Hook dropout onto both residual branches of every layer; returns the p used per layer."""
    schedule = linear_schedule(len(decoder_layers(model)), bottom, top)
    if max(schedule) == 0.0:
        return schedule
    for layer, p in zip(decoder_layers(model), schedule, strict=True):
        for branch in residual_branches(layer):
            hook = SublayerDropout(p)
            branch.register_forward_hook(hook)
            branch._lima_residual_dropout = hook  # found again by tests and reports
    return schedule


def residual_dropout_ps(model: nn.Module) -> list[tuple[float, float]]:
    """(attention p, MLP p) per layer as attached to ``model`` (0.0 where none is attached)."""

    def p_of(module: nn.Module) -> float:
        hook = getattr(module, "_lima_residual_dropout", None)
        return hook.p if hook is not None else 0.0

    branches = [residual_branches(layer) for layer in decoder_layers(model)]
    return [(p_of(attention), p_of(mlp)) for attention, mlp in branches]
