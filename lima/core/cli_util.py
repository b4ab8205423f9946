"""Helpers shared by the stage commands."""

from __future__ import annotations

import sys
from pathlib import Path

from lima.core.signals import install_stop_handlers


def raise_on_sigterm() -> None:
    """SIGTERM raises :class:`lima.core.signals.Terminated` and SIGINT KeyboardInterrupt, whatever this process
    inherited, so ``finally`` blocks run (servers stopped, files closed). ``lima``'s entry point already does
    this; commands call it too so that they behave the same when invoked in-process."""
    install_stop_handlers()


def echo_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Progress probes for the interruption message (lima.core.signals.on_interrupt): each says what an
# interrupted command has already kept on disk, read from its outputs so no loop needs to report.


def lines_written(path: Path, what: str) -> str:
    """'7 generations kept in runs/gen.jsonl' (blank lines and a torn last line do not count)."""
    if not path.is_file():
        return ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        n = sum(1 for line in fh if line.strip().endswith("}"))
    return f"{n} {what} kept in {path}"


def replies_cached(cache: Path) -> str:
    """'12 replies cached in OUT/judge_cache.sqlite': a rerun sends none of them again."""
    from lima.core.chat_cache import count_cached

    n = count_cached(cache)
    if n is None:
        return ""
    return f"{n} replies cached in {cache}"


def files_matching(folder: Path, pattern: str, what: str) -> str:
    """'3 finished shards in OUT/shards' for the files under ``folder`` that match ``pattern``."""
    n = sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0
    return f"{n} {what} in {folder}" if n else ""
