"""Records -> tokens: assistant-only labels (multi-turn, EOT included), trimming, packing equivalence."""

from __future__ import annotations

import pytest
import torch

from lima.core.record import Example
from lima.finetune.data import (
    IGNORE_INDEX,
    PaddedCollator,
    PaddingFreeCollator,
    assistant_spans,
    tokenize_example,
    tokenize_records,
)
from lima.finetune.template import prepare_tokenizer
from tests.finetune.conftest import records

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _example(i: int) -> Example:
    return Example.from_dict(records(8)[i])


def _labelled_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX])


def test_lima_template_labels_only_assistant_turns_with_eot(tokenizer):
    fmt = prepare_tokenizer(tokenizer, "auto", "<|eot|>")
    assert fmt.kind == "lima" and fmt.added_tokens == 1  # a base-model tokenizer gets LIMA's template
    example = _example(3)  # system + two user/assistant exchanges
    ids, labels, trimmed = tokenize_example(tokenizer, example, max_length=512)
    assert not trimmed and len(ids) == len(labels)
    eot = tokenizer.convert_tokens_to_ids("<|eot|>")
    answers = [m["content"] for m in example.messages if m["role"] == "assistant"]
    # Exactly the assistant turns are targets, each followed by its EOT (and the newline after it).
    assert _labelled_text(tokenizer, ids, labels) == "".join(f"{a}<|eot|>\n" for a in answers)
    assert ids.count(eot) == len(example.messages)  # EOT after every utterance, user turns too
    target_eots = [i for i, (t, lab) in enumerate(zip(ids, labels, strict=True)) if t == eot and lab == eot]
    assert len(target_eots) == len(answers)
    non_targets = [lab for lab in labels if lab == IGNORE_INDEX]
    text = tokenizer.decode(ids)
    assert text.startswith("<s>System:\nbe short.<|eot|>\nUser:\n")
    assert len(non_targets) == len(ids) - sum(lab != IGNORE_INDEX for lab in labels) > 10


def test_model_template_is_used_when_present(tokenizer):
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    fmt = prepare_tokenizer(tokenizer, "auto", "<|eot|>")
    assert fmt.kind == "model" and fmt.eot_token is None and "<|eot|>" not in tokenizer.get_vocab()
    example = _example(1)
    ids, labels, _ = tokenize_example(tokenizer, example, max_length=512)
    answers = [m["content"] for m in example.messages if m["role"] == "assistant"]
    assert _labelled_text(tokenizer, ids, labels) == "".join(f"{a}<|im_end|>\n" for a in answers)


def test_spans_follow_incremental_rendering(tokenizer):
    prepare_tokenizer(tokenizer, "lima", "<|eot|>")
    text, spans = assistant_spans(tokenizer, _example(1).messages)
    assert [text[a:b] for a, b in spans] == [
        _example(1).messages[1]["content"] + "<|eot|>\n",
        "because the yeast can ferment the sugar.<|eot|>\n",
    ]


def test_trimming_is_counted_and_untrainable_examples_dropped(tokenizer):
    prepare_tokenizer(tokenizer, "lima", "<|eot|>")
    examples = [_example(i) for i in range(4)]
    full, stats = tokenize_records(tokenizer, examples, max_length=512)
    assert stats.trimmed == 0 and len(full) == 4

    def prompt_tokens(example: Example) -> int:
        text, spans = assistant_spans(tokenizer, example.messages)
        return len(tokenizer(text[: spans[0][0]], add_special_tokens=False)["input_ids"])

    prompt_len = min(prompt_tokens(e) for e in examples)  # trimmed here, example(s) keep no target at all
    rows, stats = tokenize_records(tokenizer, examples, max_length=prompt_len)
    assert stats.trimmed == 4 and stats.dropped_no_target >= 1 and len(rows) == 4 - stats.dropped_no_target
    assert all(len(r["input_ids"]) == prompt_len for r in rows)


def test_padding_free_batch_gives_the_same_per_example_losses(tiny_model_dir, tokenizer):
    """Packed (one row, positions restart per example) vs one example at a time: same loss per example."""
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    prepare_tokenizer(tokenizer, "lima", "<|eot|>")
    rows, _ = tokenize_records(tokenizer, [_example(i) for i in range(4)], max_length=512)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    model.resize_token_embeddings(len(tokenizer))
    model.eval()

    def per_token_losses(batch):
        with torch.no_grad():
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        labels = batch["labels"]
        return torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="none", ignore_index=IGNORE_INDEX
        ), labels[:, 1:].flatten()

    packed, packed_labels = per_token_losses(PaddingFreeCollator()(rows))
    starts = [0]
    for row in rows:
        starts.append(starts[-1] + len(row["input_ids"]))
    for i, row in enumerate(rows):
        alone, labels = per_token_losses(PaddingFreeCollator()([row]))
        # Position t of the flattened row predicts token t+1; example i's targets are its own slice.
        piece = packed[starts[i] : starts[i + 1] - 1]
        mask = labels != IGNORE_INDEX
        assert mask.sum() > 0
        torch.testing.assert_close(piece[mask], alone[mask], rtol=1e-4, atol=1e-5)
        assert (packed_labels[starts[i] : starts[i + 1] - 1] == labels).all()
    # And the same losses again with padding + attention mask.
    padded = PaddedCollator(tokenizer.pad_token_id)(rows)
    assert padded["input_ids"].shape[1] % 8 == 0
    with torch.no_grad():
        logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    for i, row in enumerate(rows):
        alone, labels = per_token_losses(PaddingFreeCollator()([row]))
        n = len(row["input_ids"])
        mine = torch.nn.functional.cross_entropy(
            logits[i, : n - 1], padded["labels"][i, 1:n], reduction="none"
        )
        mask = labels != IGNORE_INDEX
        torch.testing.assert_close(mine[mask], alone[mask], rtol=1e-4, atol=1e-5)


class _TwoCharTokenizer:
    """Renders ``<u>text<a>text`` and cuts it into 2-character tokens, so a token can cross a span start."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        return "".join(f"<{m['role'][0]}>{m['content']}" for m in messages) + (
            "<a>" if add_generation_prompt else ""
        )

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
        offsets = [(i, min(i + 2, len(text))) for i in range(0, len(text), 2)]
        return {"input_ids": list(range(len(offsets))), "offset_mapping": offsets}


def test_tokens_straddling_an_assistant_span_start_are_counted():
    """'<u>hey<a>okay': the reply starts at character 9, inside the token (8, 10); it is not a label, and
    data_stats now says how many such tokens there were (they used to vanish uncounted)."""
    from lima.finetune.data import tokenize_records

    example = Example(id="s", source="manual", messages=[
        {"role": "user", "content": "hey"}, {"role": "assistant", "content": "okay"}])  # fmt: skip
    rows, stats = tokenize_records(_TwoCharTokenizer(), [example], max_length=64)
    assert rows[0]["labels"] == [-100] * 5 + [5, 6]  # (10,12) "ka", (12,13) "y" are labels
    assert stats.summary()["straddling"] == 1
