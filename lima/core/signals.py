"""Stopping cleanly: Ctrl-C and SIGTERM, whatever the process inherited, and no orphans after SIGKILL.

A process that starts with SIGINT ignored keeps it ignored (every background job of a non-interactive shell,
``nohup``, many CI runners), and Python then installs no KeyboardInterrupt handler. :func:`install_stop_handlers`
sets both handlers explicitly, so ``finally`` blocks run (servers stopped by pid, files closed) however the
process was launched. SIGTERM raises :class:`Terminated`, a KeyboardInterrupt, so the same cleanup runs and the
CLI can exit 143 instead of 130.

A child we start (the llama.cpp judge server, an ablation arm) cannot be stopped by our ``finally`` when we are
killed with SIGKILL. :func:`watch_parent` runs in the child: it exits as soon as the process that started it is
gone (its parent pid changes). It is a watchdog on the parent's pid rather than ``PR_SET_PDEATHSIG``, which
fires when the *thread* that forked exits: the judge client restarts a crashed server from a worker thread.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

# The env var through which a parent hands its pid to a child that should not outlive it.
PARENT_PID_ENV = "LIMA_PARENT_PID"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so the same cleanup runs."""

    signal_number = signal.SIGTERM


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def install_stop_handlers() -> bool:
    """SIGINT raises KeyboardInterrupt and SIGTERM raises :class:`Terminated`, whatever was inherited.

    Only the main thread may set handlers; elsewhere (a library caller's worker thread) this does nothing and
    returns False.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True


def exit_code_for(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (128 + the signal number, as shells report them)."""
    return 128 + int(getattr(exc, "signal_number", signal.SIGINT))


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that must exit when this process dies (see :func:`watch_parent`)."""
    return {**(os.environ if env is None else env), PARENT_PID_ENV: str(os.getpid())}


def watch_parent(interval_s: float = 0.5) -> bool:
    """In a child started with :func:`child_env`: exit as soon as the parent that started it is gone.

    The variable is removed from this process's environment, so grandchildren do not watch the wrong pid.
    Returns False when no parent asked for it.
    """
    value = os.environ.pop(PARENT_PID_ENV, None)
    if not value or not value.isdigit():
        return False
    parent = int(value)
    if os.getppid() != parent:  # the parent died before we got here
        _leave()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        _leave()

    threading.Thread(target=watch, name="lima-parent-watch", daemon=True).start()
    return True


def _leave() -> None:
    os._exit(143)  # no cleanup of ours is left to run; a server thread may be blocked in C code


# What the interruption message says: set by the command that runs, read when Ctrl-C or SIGTERM arrives.
_progress: list[Callable[[], str]] = []
_resume: list[str] = []


def on_interrupt(progress: Callable[[], str] | None = None, resume: str | None = None) -> None:
    """Register what an interruption should report: a callable saying what finished, and the command that
    resumes (default: the same command line, since every resumable command continues where it stopped)."""
    if progress is not None:
        _progress.append(progress)
    if resume is not None:
        _resume.append(resume)


def interruption_message(exc: BaseException) -> str:
    """One line: which signal, what finished, and the command that resumes."""
    what = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
    finished: list[str] = []
    for probe in _progress:
        try:
            text = probe()
        except Exception:  # a progress probe must never hide the interruption itself
            text = ""
        if text:
            finished.append(text)
    done = "; ".join(finished) if finished else "nothing finished yet"
    resume = _resume[-1] if _resume else "lima " + shlex.join(sys.argv[1:])
    return f"interrupted ({what}): {done}. Finished work is kept; resume with: {resume}"


def reset_interrupt_notes() -> None:
    _progress.clear()
    _resume.clear()
