"""Prompt and generation files as ``lima generate`` / ``judge`` / ``grade`` accept them: lima's own
(:mod:`lima.eval.records`) or, said here explicitly, an ecosystem benchmark's (AlpacaEval, MT-Bench /
FastChat, Arena-Hard: :mod:`lima.eval.formats`), converted to lima's records on the way in.

Layer: adapters. Imports the bottom layer and the other adapters, never an engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.formats import foreign_generations, foreign_prompt_format, foreign_prompts
from lima.eval.records import (
    Prompt,
    check_prompts,
    detect_lima_prompt_format,
    read_lima_generations,
    read_lima_prompts,
)

FOREIGN_PROMPT_FORMATS = ("alpaca_eval", "mt_bench", "arena_hard")


def detect_prompt_format(path: Path) -> str:
    """A benchmark's prompt file (``alpaca_eval``, ``mt_bench``, ``arena_hard``), else lima's own format."""
    if path.suffix != ".txt" and path.read_bytes().strip():
        foreign = foreign_prompt_format(path)
        if foreign:
            return foreign
    return detect_lima_prompt_format(path)


def read_prompts(path: str | os.PathLike, fmt: str = "auto") -> list[Prompt]:
    """Prompts from any prompt file lima takes (see ``prompt_format`` in ``configs/generate``)."""
    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: prompt file not found (set prompts: or pass --prompts)")
    fmt = detect_prompt_format(path) if fmt == "auto" else fmt
    if fmt in FOREIGN_PROMPT_FORMATS:
        return check_prompts(path, [Prompt(pid, text) for pid, text in foreign_prompts(path, fmt)])
    return read_lima_prompts(path, fmt)


def read_generations(path: str | os.PathLike, allow_empty: bool = False) -> list[dict[str, Any]]:
    """A ``lima generate`` file, or a leaderboard model's answers (AlpacaEval ``model_outputs.json``, FastChat
    or Arena-Hard ``model_answer/*.jsonl``) as lima generation records."""
    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: generations file not found")
    foreign = foreign_generations(path)
    if foreign is not None:
        empty = [r["prompt_id"] for r in foreign if not r["output"].strip()]
        if empty and not allow_empty:
            raise LimaError(
                f"{path}: {len(empty)} empty answer(s) (e.g. prompt {empty[0]!r}); set allow_empty=true"
            )
        return foreign
    return read_lima_generations(path, allow_empty)
