"""Layerwise residual dropout: the linear p schedule on several architectures; active only in training."""

from __future__ import annotations

import pytest
import torch

from lima.finetune.dropout import attach_residual_dropout, linear_schedule, residual_dropout_ps

ARCHS = ["llama", "mistral", "qwen2", "gemma", "gpt_neox"]


def tiny(arch: str, layers: int = 4):
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"num_key_value_heads": 2} if arch != "gpt_neox" else {}
    if arch == "gemma":
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
