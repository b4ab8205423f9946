"""Records -> token ids and labels with loss on assistant tokens only; batch collators.

Each record is rendered once with the tokenizer's chat template and tokenized once (exactly what inference
sees). Assistant spans are found by rendering the conversation up to each assistant turn with and without
that turn: the difference is the turn itself including its end marker (EOT), and every token that starts
inside such a span is a label. Everything else is -100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.conversations import read_conversation_file
from lima.core.errors import LimaError
from lima.core.record import Example

IGNORE_INDEX = -100


@dataclass
class TokenizeStats:
    examples: int = 0
    trimmed: int = 0  # longer than max_length: cut at max_length
    dropped_no_target: int = 0  # no assistant token left (no assistant turn, or trimmed away)
    tokens: int = 0
    target_tokens: int = 0
    # Tokens that start before an assistant span and end inside it (a merge across the header/reply
    # boundary): they are not labels, so part of the reply's first characters is never trained on.
    straddling: int = 0
    lengths: list[int] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, int]:
        return {
            "examples": self.examples,
            "trimmed": self.trimmed,
            "dropped_no_target": self.dropped_no_target,
            "tokens": self.tokens,
            "target_tokens": self.target_tokens,
            "straddling": self.straddling,
            "max_length_seen": max(self.lengths, default=0),
        }


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns (end marker included)."""
    text = _render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True) if i else ""
        through = _render(tokenizer, messages[: i + 1])
        if not text.startswith(through) or not through.startswith(before):
            raise LimaError(
                "this chat template does not render conversations incrementally (e.g. it rewrites earlier "
                "turns); use chat_template=lima"
            )
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_example(
    tokenizer: Any, example: Example, max_length: int, stats: TokenizeStats | None = None
) -> tuple[list[int], list[int], bool]:
    """``(input_ids, labels, trimmed)`` for one record; ``stats.straddling`` counts the tokens that cross
    the start of an assistant span (within max_length)."""
    text, spans = assistant_spans(tokenizer, example.messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    span_index = 0
    for t, (start, end) in enumerate(encoded["offset_mapping"]):
        while span_index < len(spans) and start >= spans[span_index][1]:
            span_index += 1
        if span_index == len(spans):
            break
        lo, hi = spans[span_index]
        if lo <= start < hi and end > start:
            labels[t] = ids[t]
        elif start < lo < end and stats is not None and t < max_length:
            stats.straddling += 1
    trimmed = len(ids) > max_length
    return ids[:max_length], labels[:max_length], trimmed


def tokenize_records(
    tokenizer: Any, examples: list[Example], max_length: int
) -> tuple[list[dict], TokenizeStats]:
    """Tokenize every record; returns rows ``{input_ids, labels, length}`` and counts."""
    from tqdm.auto import tqdm

    stats = TokenizeStats()
    rows = []
    for example in tqdm(examples, desc="tokenize", unit="ex", leave=False, disable=len(examples) < 200):
        ids, labels, trimmed = tokenize_example(tokenizer, example, max_length, stats)
        stats.examples += 1
        stats.trimmed += trimmed
        n_target = sum(label != IGNORE_INDEX for label in labels)
        if n_target == 0:
            stats.dropped_no_target += 1
            continue
        stats.tokens += len(ids)
        stats.target_tokens += n_target
        stats.lengths.append(len(ids))
        rows.append({"input_ids": ids, "labels": labels, "length": len(ids)})
    return rows, stats


def read_training_records(path: Path, what: str) -> list[Example]:
    """All records of ``path`` in any format curation reads (records, LIMA/FastChat, ShareGPT, Alpaca, JSON
    array or lines); any invalid record is an error naming its place (never silently skipped)."""
    return read_conversation_file(path, what)


class PaddingFreeCollator:
    """Concatenate a micro-batch into one row; ``position_ids`` restart at 0 for each example.

    transformers builds a block-diagonal causal mask from restarting positions (sdpa/eager/flex) or passes
    sequence boundaries to FlashAttention, so no example attends to another and no padding is computed.
    """

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for row in rows:
            ids.extend(row["input_ids"])
            # The first token of an example is never a target: it would be "predicted" from the previous one.
            labels.extend([IGNORE_INDEX, *row["labels"][1:]])
            positions.extend(range(len(row["input_ids"])))
        return {
            "input_ids": torch.tensor([ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions]),
            # Boundaries are read from position_ids only without a KV cache (and without attention_mask).
            "use_cache": False,
        }


class PaddedCollator:
    """Right-pad a micro-batch to its longest example (batches are length-grouped by the sampler)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = 8) -> None:
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class CountingCollator:
    """Adds ``num_tokens`` (non-padding tokens, a Python int) to each batch: the trainer counts tokens seen
    on the host instead of summing a device tensor and syncing after every micro-batch."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(rows)
        batch["num_tokens"] = sum(len(r["input_ids"]) for r in rows)
        return batch
