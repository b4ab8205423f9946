"""Layerwise residual dropout: the linear p schedule on several architectures; active only in training."""

from __future__ import annotations

import pytest
import torch

from lima.finetune.dropout import (
    attach_residual_dropout,
    decoder_layers,
    linear_schedule,
    residual_dropout_ps,
)

ARCHS = ["llama", "mistral", "qwen2", "gemma", "gpt_neox", "gemma2", "gemma3_text", "olmo2"]
# Where the residual stream is read between the attention add and the MLP add, per family (an oracle written
# from the HF modeling code, independent of lima.finetune.dropout): the input of this child of the layer.
MID_STREAM = {"llama": "post_attention_layernorm", "qwen2": "post_attention_layernorm",
              "gemma2": "pre_feedforward_layernorm", "gemma3_text": "pre_feedforward_layernorm", "olmo2": "mlp"}  # fmt: skip
# The MLP branch as each family computes it from the mid stream (same oracle source).
MLP_BRANCH = {
    "llama": lambda layer, h: layer.mlp(layer.post_attention_layernorm(h)),
    "qwen2": lambda layer, h: layer.mlp(layer.post_attention_layernorm(h)),
    "gemma2": lambda layer, h: layer.post_feedforward_layernorm(
        layer.mlp(layer.pre_feedforward_layernorm(h))
    ),
    "gemma3_text": lambda layer, h: layer.post_feedforward_layernorm(
        layer.mlp(layer.pre_feedforward_layernorm(h))
    ),
    "olmo2": lambda layer, h: layer.post_feedforward_layernorm(layer.mlp(h)),
}


def tiny(arch: str, layers: int = 4):
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"num_key_value_heads": 2} if arch != "gpt_neox" else {}
    if arch.startswith("gemma"):
        extra["head_dim"] = 16
    config = AutoConfig.for_model(
        arch, vocab_size=64, hidden_size=64, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=64, **extra,
    )  # fmt: skip
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def test_linear_schedule():
    assert linear_schedule(4, 0.0, 0.3) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert linear_schedule(1, 0.0, 0.3) == [0.3]


@pytest.mark.parametrize("arch", ARCHS)
def test_dropout_per_layer_and_modes(arch):
    torch.set_num_threads(2)
    model = tiny(arch)
    schedule = attach_residual_dropout(model, 0.0, 0.3)
    assert schedule == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # Both sublayers of layer i (attention and MLP) carry p_i.
    assert residual_dropout_ps(model) == [(p, p) for p in schedule]
    ids = torch.randint(0, 64, (2, 16))
    model.eval()
    with torch.no_grad():
        a, b = model(ids).logits, model(ids).logits
    assert torch.equal(a, b)  # eval: no dropout, deterministic
    model.train()
    with torch.no_grad():
        c, d = model(ids).logits, model(ids).logits
    assert not torch.equal(c, d) and not torch.equal(a, c)


def test_no_dropout_when_top_is_zero_and_hooks_survive_lora():
    from peft import LoraConfig, get_peft_model

    model = tiny("llama", layers=3)
    assert attach_residual_dropout(model, 0.0, 0.0) == [0.0, 0.0, 0.0]
    assert residual_dropout_ps(model) == [(0.0, 0.0)] * 3
    model = tiny("llama", layers=3)
    attach_residual_dropout(model, 0.1, 0.3)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear"))
    assert residual_dropout_ps(peft_model) == [pytest.approx((p, p)) for p in (0.1, 0.2, 0.3)]
    ids = torch.randint(0, 64, (1, 8))
    peft_model.train()
    with torch.no_grad():
        assert not torch.equal(peft_model(ids).logits, peft_model(ids).logits)


def _residual_branches_seen(model, layer_index: int, arch: str, ids) -> tuple[torch.Tensor, ...]:
    """What layer ``layer_index`` adds to the residual stream (attention branch, MLP branch), measured as
    differences of the stream itself: mid - input and output - mid; and the mid stream."""
    layer = decoder_layers(model)[layer_index]
    seen: dict[str, torch.Tensor] = {}

    def first(x):
        return x[0] if isinstance(x, tuple) else x

    def on_input(module, args, kwargs):
        seen["in"] = first(args) if args else kwargs["hidden_states"]

    handles = [
        layer.register_forward_pre_hook(on_input, with_kwargs=True),
        getattr(layer, MID_STREAM[arch]).register_forward_pre_hook(
            lambda m, args: seen.__setitem__("mid", args[0])
        ),
        layer.register_forward_hook(lambda m, args, out: seen.__setitem__("out", first(out))),
    ]
    with torch.no_grad():
        model(ids)
    for handle in handles:
        handle.remove()
    return seen["mid"] - seen["in"], seen["out"] - seen["mid"], seen["mid"]


@pytest.mark.parametrize("arch", list(MID_STREAM))
def test_residual_branch_is_dropped_at_rate_p(arch):
    """Layer 0 (p = 0) adds exactly what it adds in eval mode; the top layer (p = 0.3) zeroes a fraction p of
    each branch and scales the rest by 1 / (1 - p), so the branch is unbiased. Post-norm families (Gemma 2/3,
    OLMo 2) fail this when dropout sits before their post-norm, which renormalises the kept units."""
    torch.set_num_threads(2)
    p = 0.3
    model = tiny(arch, layers=2)  # layer 0 at p = 0: the top layer's input is the same in train and eval
    assert attach_residual_dropout(model, 0.0, p) == pytest.approx([0.0, p])
    ids = torch.randint(0, 64, (4, 32), generator=torch.Generator().manual_seed(0))
    model.eval()
    reference = [_residual_branches_seen(model, i, arch, ids) for i in (0, 1)]
    model.train()
    torch.manual_seed(0)
    trained = [_residual_branches_seen(model, i, arch, ids) for i in (0, 1)]
    # The top MLP's input carries the top attention's dropout: its eval-mode branch is computed from that input.
    model.eval()
    with torch.no_grad():
        top_mlp_expected = MLP_BRANCH[arch](decoder_layers(model)[1], trained[1][2])
    for branch, name in ((0, "attention"), (1, "mlp")):
        torch.testing.assert_close(
            trained[0][branch], reference[0][branch], rtol=0, atol=1e-6, msg=f"layer 0 {name}"
        )
        top, expected = trained[1][branch], (reference[1][0], top_mlp_expected)[branch]
        kept = top != 0
        assert (~kept).float().mean().item() == pytest.approx(p, abs=0.03), f"top {name}: drop rate"
        torch.testing.assert_close(top[kept], expected[kept] / (1 - p), rtol=1e-4, atol=1e-5,
                                   msg=f"top {name}: kept units rescaled by 1/(1-p)")  # fmt: skip
