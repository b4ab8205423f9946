"""Tiny random models for tests, benchmarks and smoke runs: a real architecture with a few small layers and a
small-vocabulary BPE tokenizer trained on the spot. Saved as a normal model directory, so every code path
(``from_pretrained``, the CLI) treats it like any other local model."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path

_WORDS = (
    "the a an of to in and or is are was be how what why when which who can should would could do does "
    "make cook water coffee beer brew grind bean roast hop malt yeast ferment bottle glass cup taste flavor "
    "answer question step first then next finally because however example code list table python function "
    "return value model data train test learn write story poem essay explain describe compare help use "
    "time day year people world home work good best more less high low long short new old small large"
).split()


def synthetic_corpus(n_lines: int = 2000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 24))) + "." for _ in range(n_lines)]


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer with <s>, </s>, <pad>, <unk>, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny_model(
    out_dir: str | os.PathLike,
    arch: str = "llama",
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 1024,
    chat_template: str | None = None,
    corpus: Iterable[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised ``arch`` model and its tokenizer to ``out_dir``; return the path."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(out_dir)
    tokenizer = train_tokenizer(corpus or synthetic_corpus(seed=seed), vocab_size=vocab_size)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    if arch in ("llama", "mistral", "qwen2", "gemma"):
        common["num_key_value_heads"] = num_kv_heads
    if arch == "gemma":
        common["head_dim"] = hidden_size // num_heads
    config = AutoConfig.for_model(arch, **common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
