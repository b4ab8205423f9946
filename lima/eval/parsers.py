"""Verdict parsers for judge replies. The **last** verdict token in a reply wins (judges often quote the
options or change their mind while reasoning); a reply without one parses to ``None`` — an error for the
caller to retry and count, never a tie.

Pairwise verdicts are positional: ``"A"`` means the answer shown first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["A", "B", "tie"]
VERDICTS: tuple[str, ...] = ("A", "B", "tie")


@dataclass(frozen=True)
class Parsed:
    verdict: Verdict
    level: str  # the token as the judge wrote it, normalised (e.g. "A>>B", "[[C]]")


_LIMA = re.compile(r"\b(answer\s*a|answer\s*b|neither)\W{0,4}\s*is\s+significantly\s+better", re.I)
_MTBENCH = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_ARENA = re.compile(r"\[\[\s*([AB])\s*(>>|>|=|<<|<)\s*([AB])\s*\]\]")
_LIKERT = (
    re.compile(r"\bscore\W{0,3}\s*(?:is\s*)?\**\s*([1-6])(?![\d.])", re.I),
    re.compile(r"\[\[\s*([1-6])\s*\]\]"),
    re.compile(r"\brating\W{0,3}\s*(?:is\s*)?\**\s*([1-6])(?![\d.])", re.I),
)


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    match = None
    for match in pattern.finditer(text):  # noqa: B007 — we want the last one
        pass
    return match


def parse_lima_3way(text: str) -> Parsed | None:
    match = _last(_LIMA, text)
    if match is None:
        return None
    who = re.sub(r"\s+", "", match.group(1).lower())
    verdict: Verdict = {"answera": "A", "answerb": "B", "neither": "tie"}[who]
    return Parsed(verdict, match.group(0))


def parse_mtbench(text: str) -> Parsed | None:
    match = _last(_MTBENCH, text)
    if match is None:
        return None
    letter = match.group(1)
    return Parsed("tie" if letter == "C" else letter, f"[[{letter}]]")  # type: ignore[arg-type]


def parse_fastchat_pair(text: str) -> Parsed | None:
    """FastChat llm_judge's rule for pair-v2 replies: tag precedence, not position — ``[[A]]`` anywhere wins,
    else ``[[B]]``, else ``[[C]]`` (a tie); exact tags only. This is how its stored ``g1/g2_winner`` were made."""
    for tag, verdict in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if tag in text:
            return Parsed(verdict, tag)  # type: ignore[arg-type]
    return None


def parse_arena_hard(text: str) -> Parsed | None:
    match = _last(_ARENA, text)
    if match is None:
        return None
    left, op, right = match.groups()
    if left == right:
        return None
    if op.startswith("<"):  # "B<A" means A is better: rewrite as "A>B"
        left, right, op = right, left, op.replace("<", ">")
    level = f"{left}{op}{right}"
    verdict: Verdict = "tie" if op == "=" else left  # type: ignore[assignment]
    return Parsed(verdict, "A=B" if op == "=" else level)


def parse_likert(text: str) -> int | None:
    """A 1–6 helpfulness score: the last ``Score: N`` (or ``[[N]]``, ``Rating: N``) in the reply."""
    best: re.Match[str] | None = None
    for pattern in _LIKERT:
        match = _last(pattern, text)
        if match is not None and (best is None or match.start() > best.start()):
            best = match
    return int(best.group(1)) if best else None


PAIRWISE_PARSERS: dict[str, Callable[[str], Parsed | None]] = {
    "lima_3way": parse_lima_3way,
    "mtbench": parse_mtbench,
    "arena_hard": parse_arena_hard,
    "fastchat": parse_fastchat_pair,
}
