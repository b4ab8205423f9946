"""Text filters. Each returns ``None`` (keep) or the name of the reason to drop."""

from __future__ import annotations

import re

from lima.curation.html import prose

# Whole-word first person (LIMA): I, I'm, I've, I'd, I'll are case-sensitive ("i" in code or math is not
# the pronoun); me/my/mine are not.
_FIRST_PERSON = re.compile(r"(?<![\w'’])(?:I(?:['’](?:m|ve|d|ll))?|[Mm]e|[Mm]y|[Mm]ine|ME|MY|MINE)(?![\w'’])")
_WORD = re.compile(r"[A-Za-z]+")
_EN_STOP = frozenset(
    "the of and to a in is that it for on with as are be this or by not you can from".split()
)


# The Roman numeral I is not the pronoun: after a word that numbers things ("Type I error", "World War I",
# "Part I"), beside another numeral ("I and II", "II–I"), or a monarch's ("Charles I of England"). "I/O" is not
# the pronoun either.
_NUMBERING_WORDS = frozenset(
    "Type War Part Phase Stage Class Grade Level Chapter Section Book Volume Vol Act Article Title Appendix "
    "Figure Fig Table Category Group Division Tier Series Schedule Mark Mk Round Trial Experiment Unit Zone "
    "Region Step Task Exercise Problem Lesson Episode Season Game Model Version type".split()
)
_NUMERAL = r"(?:II|III|IV|V|VI|VII|VIII|IX|X|XI|XII)"  # a neighbour numeral (not "I": "you and I, I think")
_JOINER = r"\s*(?:,|/|-|–|—|&|\band\b|\bor\b|\bto\b|\bthrough\b)\s*"
_PREVIOUS_WORD = re.compile(r"([A-Za-z]+)[ -]$")
_NUMERAL_AFTER = re.compile(rf"{_JOINER}{_NUMERAL}(?![\w'’])")
_NUMERAL_BEFORE = re.compile(rf"(?<![\w'’]){_NUMERAL}{_JOINER}$")
_OF = re.compile(r"\s+of\b")


def _is_roman_one(text: str, at: int) -> bool:
    """Whether the lone "I" at ``at`` is the Roman numeral (or I/O), judged from the words around it."""
    before, after = text[max(0, at - 40) : at], text[at + 1 : at + 41]
    if after.startswith("/O"):
        return True
    previous = _PREVIOUS_WORD.search(before)
    if previous and previous.group(1) in _NUMBERING_WORDS:
        return True
    if _NUMERAL_AFTER.match(after) or _NUMERAL_BEFORE.search(before):
        return True
    return bool(previous and previous.group(1)[0].isupper() and before.endswith(" ") and _OF.match(after))


def has_first_person(text: str) -> bool:
    """First-person words outside code; the Roman numeral I ("Type I error", "World War I") is not one."""
    text = prose(text)
    return any(m.group(0) != "I" or not _is_roman_one(text, m.start()) for m in _FIRST_PERSON.finditer(text))


def reference_phrase(text: str, phrases: list[str]) -> str | None:
    """The first phrase (case-insensitive) that refers to other answers or the site, if any."""
    lowered = prose(text).lower()
    for phrase in phrases:
        if phrase.lower() in lowered:
            return phrase
    return None


def length_reason(text: str, min_chars: int | None, max_chars: int | None) -> str | None:
    if min_chars is not None and len(text) < min_chars:
        return "too_short"
    if max_chars is not None and len(text) > max_chars:
        return "too_long"
    return None


def looks_english(text: str) -> bool:
    """A cheap language check: mostly Latin letters and a normal share of English stop-words."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    if sum(c.isascii() for c in letters) / len(letters) < 0.8:
        return False
    words = [w.lower() for w in _WORD.findall(prose(text))]
    return len(words) < 20 or sum(w in _EN_STOP for w in words) / len(words) >= 0.05


def language_reason(text: str, language: str | None) -> str | None:
    if language is None:
        return None
    return None if looks_english(text) else "language"
