"""Prompt templates and grammars: what an annotator is shown, read from ``lima/eval/prompts`` or a path.

Layer: bottom (records, parsers, templates). Imports only ``lima.core``."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Sequence
from pathlib import Path

from lima.core.errors import LimaError

TRUNCATED = "\n[… truncated]"


def load_template(name: str, placeholders: Sequence[str]) -> str:
    """A prompt template: a path, or a file name inside ``lima/eval/prompts``."""
    path = Path(name)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        folder = importlib.resources.files("lima.eval") / "prompts"
        candidate = folder / (name if name.endswith(".txt") else f"{name}.txt")
        if not candidate.is_file():
            shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".txt"))
            raise LimaError(
                f"template {name!r}: no such file, nor a shipped template (shipped: {', '.join(shipped)})"
            )
        text = candidate.read_text(encoding="utf-8")
    missing = [p for p in placeholders if "{" + p + "}" not in text]
    if missing:
        raise LimaError(
            f"template {name!r}: missing placeholder(s) {', '.join('{' + p + '}' for p in missing)}"
        )
    return text


def fill(template: str, **values: str) -> str:
    """Substitute ``{name}`` placeholders literally (answers may contain braces, so no str.format), in one pass
    as str.format does: a value that itself holds ``{answer_b}`` is shown as it is, not substituted again."""
    if not values:
        return template
    pattern = re.compile("|".join(re.escape("{" + key + "}") for key in values))
    return pattern.sub(lambda m: values[m.group(0)[1:-1]], template)


def clip(text: str, limit: int | None) -> str:
    """An answer cut to ``limit`` characters (``max_answer_chars``) so that it fits the annotator's context."""
    return text if not limit or len(text) <= limit else text[:limit] + TRUNCATED


def read_grammar(value: str) -> str:
    """``grammar:`` is GBNF text or a path to a ``.gbnf`` file; the text is what is sent (and keyed)."""
    path = Path(value)
    if "::=" not in value:
        if not path.is_file():
            raise LimaError(f"grammar: {value!r} is neither a GBNF grammar (no '::=') nor a file")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LimaError(f"grammar: {path}: not UTF-8 text; save the grammar file as UTF-8") from None
    return value
