"""Helpers shared by the stage commands."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def raise_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` blocks run (servers stopped, files closed)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def echo_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
