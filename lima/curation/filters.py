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


def has_first_person(text: str) -> bool:
    return _FIRST_PERSON.search(prose(text)) is not None


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
