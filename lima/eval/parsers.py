"""Verdict parsers for judge replies. The **last** verdict token in a reply wins (judges often quote the
options or change their mind while reasoning); a reply without one parses to ``None`` — an error for the
caller to retry and count, never a tie.

Pairwise verdicts are positional: ``"A"`` means the answer shown first.

Layer: bottom (records, parsers, templates). Imports nothing of lima.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["A", "B", "tie"]
VERDICTS: tuple[str, ...] = ("A", "B", "tie")


@dataclass(frozen=True)
class Parsed:
    verdict: Verdict
    level: str  # the token as the judge wrote it, normalised (e.g. "A>>B", "[[C]]")


# "Neither ... is significantly better" in the forms judges write it. The "neither answer A nor answer B"
# form is one alternative so that its trailing "answer B is significantly better" is not read as a B verdict.
_NEITHER = (
    r"neither(?:\s+(?:answer\s*)?[ab]\s+nor\s+(?:answer\s*)?[ab]"
    r"|\s+of\s+(?:them|the\s+two(?:\s+(?:answers|responses))?|the\s+(?:answers|responses))"
    r"|\s+(?:answer|response|one))?"
)
_LIMA = re.compile(rf"\b({_NEITHER}|answer\s*a|answer\s*b)\W{{0,4}}\s*is\s+significantly\s+better", re.I)
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
    verdict: Verdict = "tie" if who.startswith("neither") else {"answera": "A", "answerb": "B"}[who]
    return Parsed(verdict, match.group(0))


def parse_last_tag(text: str) -> Parsed | None:
    """The **last** ``[[A]]`` / ``[[B]]`` / ``[[C]]`` tag (C: a tie). Not FastChat's rule, which is tag
    precedence (:func:`parse_fastchat_pair`); this parser was called ``mtbench``, a name kept as an alias."""
    match = _last(_MTBENCH, text)
    if match is None:
        return None
    letter = match.group(1)
    return Parsed("tie" if letter == "C" else letter, f"[[{letter}]]")  # type: ignore[arg-type]


parse_mtbench = parse_last_tag  # the old name, kept importable


def parse_fastchat_pair(text: str) -> Parsed | None:
    """FastChat llm_judge's rule for pair-v2 replies: tag precedence, not position — ``[[A]]`` anywhere wins,
    else ``[[B]]``, else ``[[C]]`` (a tie); exact tags only. This is how its stored ``g1/g2_winner`` were made."""
    for tag, verdict in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if tag in text:
            return Parsed(verdict, tag)  # type: ignore[arg-type]
    return None


# FastChat llm_judge's single-answer rating (common.one_score_pattern and its backup).
_FASTCHAT_RATING = (re.compile(r"\[\[(\d+\.?\d*)\]\]"), re.compile(r"\[(\d+\.?\d*)\]"))


def parse_fastchat_rating(text: str) -> float | None:
    """FastChat's rule for single-v1 replies (``Rating: [[5]]``): the **first** ``[[n]]``, else the first
    ``[n]``, any number (no range check, as FastChat); None where FastChat records its error value -1."""
    for pattern in _FASTCHAT_RATING:
        match = pattern.search(text)
        if match is not None:
            number = match.group(1)
            return int(number) if number.isdigit() else float(number)
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


# arena-hard-auto's verdict labels (what its show_result.py scores) -> lima's five levels
_ARENA_LABELS = {
    "A>>B": "A>>B", "A>B": "A>B", "A=B": "A=B", "B=A": "A=B", "B>A": "B>A", "B>>A": "B>>A",
    "A<<B": "B>>A", "A<B": "B>A", "B<A": "A>B", "B<<A": "A>>B",
}  # fmt: skip
ARENA_V01_LABELS = re.compile(r"\[\[([AB<>=]+)\]\]")  # its judge_config.yaml regex_pattern
_ARENA_V2 = (re.compile(r"\[\[([AB<>=]+)\]\]"), re.compile(r"\[([AB<>=]+)\]"))  # arena-hard-v2.0.yaml


def _arena_label(label: str) -> Parsed | None:
    level = _ARENA_LABELS.get(label)
    if level is None:
        return None  # e.g. [[A]]: arena-hard-auto gives it no score either
    return Parsed("tie" if "=" in level else level[0], level)  # type: ignore[arg-type]


def parse_arena_hard_v01(text: str) -> Parsed | None:
    """arena-hard-auto v0.1's rule (gen_judgment.py ``get_score``): every ``[[...]]`` label in the reply; none,
    or two **distinct** ones (the judge changed its mind) -> no verdict (a null game)."""
    labels = {m for m in ARENA_V01_LABELS.findall(text) if m}
    return _arena_label(labels.pop().strip("\n")) if len(labels) == 1 else None


def parse_arena_hard_v2(text: str) -> Parsed | None:
    """arena-hard-auto v2.0's rule (gen_judgment.py ``get_score``): on the upper-cased reply, the **last**
    ``[[...]]`` label, else the last ``[...]`` one."""
    for pattern in _ARENA_V2:
        labels = [m for m in pattern.findall(text.upper()) if m]
        if labels:
            return _arena_label(labels[-1].strip("\n"))
    return None


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
    "last_tag": parse_last_tag,
    "mtbench": parse_last_tag,  # the old name of last_tag (configs using it are mapped, with a warning)
    "arena_hard": parse_arena_hard,
    "arena_hard_v01": parse_arena_hard_v01,
    "arena_hard_v2": parse_arena_hard_v2,
    "fastchat": parse_fastchat_pair,
}


# Structured verdicts: the JSON reply's ``verdict`` is one of a fixed enum per parser (positional labels).
VERDICT_ENUMS: dict[str, dict[str, Verdict]] = {
    "lima_3way": {"A": "A", "B": "B", "tie": "tie"},
    "last_tag": {"A": "A", "B": "B", "C": "tie"},
    "mtbench": {"A": "A", "B": "B", "C": "tie"},
    "fastchat": {"A": "A", "B": "B", "C": "tie"},
    "arena_hard": {"A>>B": "A", "A>B": "A", "A=B": "tie", "B>A": "B", "B>>A": "B"},
}
VERDICT_ENUMS["arena_hard_v01"] = VERDICT_ENUMS["arena_hard_v2"] = VERDICT_ENUMS["arena_hard"]
_JSON_VERDICT = re.compile(r'"verdict"\s*:\s*"([^"]*)"')


def verdict_schema(parser: str, reasoning_max_chars: int | None = None) -> dict[str, Any]:
    """JSON schema of a structured verdict: the reasoning first (so the model argues before it decides),
    then the verdict from ``VERDICT_ENUMS[parser]``."""
    reasoning: dict[str, Any] = {"type": "string"}
    if reasoning_max_chars is not None:
        reasoning["maxLength"] = reasoning_max_chars
    return {
        "type": "object",
        "properties": {
            "reasoning": reasoning,
            "verdict": {"type": "string", "enum": list(VERDICT_ENUMS[parser])},
        },
        "required": ["reasoning", "verdict"],
        "additionalProperties": False,
    }


def parse_structured(text: str, parser: str) -> Parsed | None:
    """The ``verdict`` field of a JSON reply (fenced or not); the last ``"verdict": "…"`` pair when the
    JSON is broken (e.g. cut by max_tokens after the verdict). An off-enum value is ``None``."""
    value: Any = None
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        try:
            data = json.loads(text[start : end + 1])
            value = data.get("verdict") if isinstance(data, dict) else None
        except json.JSONDecodeError:
            pass
    if not isinstance(value, str):
        match = _last(_JSON_VERDICT, text)
        value = match.group(1) if match else None
    if value is None:
        return None
    enum = VERDICT_ENUMS[parser]
    key = next((k for k in enum if k.lower() == value.strip().lower()), None)
    return Parsed(enum[key], key) if key is not None else None


LOGPROB_LETTERS = ("A", "B")  # the one-token verdict: A = the answer shown first is better


@dataclass(frozen=True)
class SoftParsed(Parsed):
    p_first: float = 0.5  # P(first) / (P(first) + P(second)) from the first token's top logprobs


def parse_logprobs(tokens: Sequence[dict[str, Any]] | None) -> SoftParsed | None:
    """A soft pairwise preference from the first generated token's ``top_logprobs`` (AlpacaEval 2's
    weighted annotator): P(A) / (P(A) + P(B)), each letter's probability summed over its spellings
    (``"A"``, ``" A"``). A letter outside the top k counts as probability 0; neither letter -> ``None``.
    The positional verdict is the likelier letter (a tie only at exactly equal mass)."""
    if not tokens:
        return None
    first = tokens[0]
    mass = dict.fromkeys(LOGPROB_LETTERS, 0.0)
    seen: set[str] = set()
    candidates = [
        *first.get("top_logprobs", []),
        {"token": first.get("token"), "logprob": first.get("logprob")},
    ]
    for entry in candidates:  # the chosen token may be absent from top k (llama.cpp then appends it)
        token, logprob = entry.get("token"), entry.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float) or token in seen:
            continue
        seen.add(token)
        letter = token.strip()
        if letter in mass:
            mass[letter] += math.exp(logprob)
    total = mass["A"] + mass["B"]
    if total <= 0:
        return None
    p_first = mass["A"] / total
    verdict: Verdict = "A" if p_first > 0.5 else "B" if p_first < 0.5 else "tie"
    return SoftParsed(verdict, f"P(A)={p_first:.3f}", p_first)
