"""The length distribution of the train set per group, beside LIMA's Table 1 (Zhou et al. 2023)."""

from __future__ import annotations

import statistics
from typing import Any

# LIMA Table 1, training set: group -> (source as the paper names it, examples, avg input, avg output length),
# lengths in LLaMA tokens.
LIMA_TABLE_1: dict[str, tuple[str, int, int, int]] = {
    "stem": ("Stack Exchange (STEM)", 200, 117, 523),
    "other": ("Stack Exchange (Other)", 200, 119, 530),
    "wikihow": ("wikiHow", 200, 12, 1811),
    "reddit": ("Pushshift r/WritingPrompts", 150, 34, 274),
    "natinst": ("Natural Instructions", 50, 236, 92),
    "manual": ("Paper Authors (Group A)", 200, 40, 334),
}
LENGTH_HEADER = [
    "group",
    "train",
    "prompt tokens (mean)",
    "response tokens (mean)",
    "response tokens (p10 / median / p90)",
    "LIMA source",
    "LIMA n",
    "LIMA input",
    "LIMA output",
]


def _quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def length_rows(stats: dict[str, Any]) -> list[list[Any]]:
    """Per group of the train set: counts and token lengths (the report's tokenizer), then LIMA's row."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row in stats["train"]:
        by_group.setdefault(row["group"], []).append(row)
    rows = []
    for group in sorted(set(by_group) | set(LIMA_TABLE_1)):
        items = by_group.get(group, [])
        lima = LIMA_TABLE_1.get(group, ("", "", "", ""))
        if items:
            prompt = round(statistics.mean(r["prompt_tokens"] for r in items))
            response = [r["response_tokens"] for r in items]
            spread = f"{_quantile(response, 0.1)} / {_quantile(response, 0.5)} / {_quantile(response, 0.9)}"
            ours: list[Any] = [len(items), prompt, round(statistics.mean(response)), spread]
        else:
            ours = [0, "", "", ""]
        rows.append([group, *ours, *lima])
    return rows


def length_note(stats: dict[str, Any]) -> str:
    return (
        f"Tokens counted with {stats['tokenizer']} (report.tokenizer); LIMA counted LLaMA tokens, so compare "
        "orders of magnitude, not single tokens."
    )
