"""'Did you mean …' suggestions for unknown names (config keys, commands, formats)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' when nothing is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[match[0]]}?)" if match else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> str:
    """One-line message for an unknown name, with a suggestion and the valid choices."""
    choices = sorted(choices)
    return f"unknown {kind} {name!r}{did_you_mean(name, choices)}; choose one of: {', '.join(choices)}"
