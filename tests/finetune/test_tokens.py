"""The lean trainable-token forward equals peft's (values and gradients) and copies no vocabulary matrix."""

from __future__ import annotations

import torch

from lima.core.config import load_config
from lima.finetune.config import TrainConfig
from lima.finetune.estimate import measure_step
from lima.finetune.tokens import _ORIGINAL, install, lean_forward
from tests.finetune.conftest import TINY_CONFIG


def _peft_model(tiny_model_dir):
    from lima.core.models import load_causal_lm, load_tokenizer
    from lima.finetune.model import adapt_model
    from lima.finetune.template import prepare_tokenizer

    config = load_config(TINY_CONFIG, TrainConfig, [f"model={tiny_model_dir}", "dropout_top=0"])
    tokenizer = load_tokenizer(str(tiny_model_dir))
    chat = prepare_tokenizer(tokenizer, "lima", "<|eot|>")
    torch.manual_seed(0)
    model = load_causal_lm(str(tiny_model_dir), dtype=torch.float32)
    model = adapt_model(model, config, len(tokenizer), chat.added_tokens)[0]
    for name, p in model.named_parameters():
        if "trainable_tokens_delta" in name:
            with torch.no_grad():
                p.add_(torch.randn_like(p))  # rows that differ from the base's
    return model, len(tokenizer) - 1


def test_lean_forward_equals_peft(tiny_model_dir):
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    install()
    model, eot = _peft_model(tiny_model_dir)
    ids = torch.tensor([[1, 5, eot, 7, eot, 2]])
    results = []
    for forward in (lean_forward, getattr(TrainableTokensLayer, _ORIGINAL)):
        TrainableTokensLayer.forward_adapters = forward
        model.zero_grad()
        logits = model(input_ids=ids).logits
        (logits.square().sum() + 3 * logits[..., eot].sum()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((logits.detach(), grads))
    TrainableTokensLayer.forward_adapters = lean_forward
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert results[0][1].keys() == results[1][1].keys() and any(
        "trainable_tokens" in n for n in results[0][1]
    )
    for name in results[0][1]:
        a, b = results[0][1][name], results[1][1][name]
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4), (name, (a - b).abs().max())


def test_lean_forward_saves_the_vocabulary_copies(tiny_model_dir):
    """peft's forward copies the head and embedding each call; the lean one does not (less logits memory)."""
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    install()
    config = load_config(TINY_CONFIG, TrainConfig, [f"model={tiny_model_dir}", "max_length=64"])
    lean = measure_step(config, 1, fake=True, device="cpu")
    TrainableTokensLayer.forward_adapters = getattr(TrainableTokensLayer, _ORIGINAL)
    try:
        peft = measure_step(config, 1, fake=True, device="cpu")
    finally:
        TrainableTokensLayer.forward_adapters = lean_forward
    assert lean.peak < peft.peak
