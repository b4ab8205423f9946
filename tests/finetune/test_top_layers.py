"""lora.top_layers with a new EOT token (every base model on LIMA's template): backpropagation still stops
at the lowest adapted layer (the trainable input row of EOT used to pull it through every layer)."""

from __future__ import annotations

import torch

from lima.core.config import load_config
from lima.finetune.config import TrainConfig
from tests.finetune.conftest import TINY_CONFIG


def test_top_layers_stops_backprop_with_a_new_eot(tiny_model_dir, capsys):
    from lima.finetune.dropout import decoder_layers
    from lima.finetune.model import prepare_model

    config = load_config(TINY_CONFIG, TrainConfig, [f"model={tiny_model_dir}", "lora.top_layers=1"])
    prepared = prepare_model(config)
    assert prepared.new_token_ids  # LIMA's template added EOT
    assert "trains in the LM head only" in capsys.readouterr().out
    model = prepared.model
    reached = []
    decoder_layers(model)[0].register_full_backward_hook(lambda *_: reached.append(0))
    eot = prepared.new_token_ids[0]
    ids = torch.tensor([[1, 5, eot, 7, eot]])
    model(input_ids=ids, labels=ids).loss.backward()
    assert reached == []  # layer 0 is below the adapted top layer: no backward through it
    head_delta = [p for n, p in model.named_parameters() if "trainable_tokens_delta" in n and "lm_head" in n]
    assert head_delta and head_delta[0].grad is not None and head_delta[0].grad.abs().sum() > 0
