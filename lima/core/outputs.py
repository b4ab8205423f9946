"""Output paths checked before any work starts: one line naming the path and the fix, never a traceback later.

    check_out_dir(out)            # curate, train, judge, grade: a folder
    check_out_file(out, "JSONL")  # generate: one file

Nothing is created here (a refused run leaves no trace): writability is probed with a temporary file in the
nearest folder that exists.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lima.core.errors import LimaError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_writable(path: Path, flag: str, shown: Path | None = None) -> None:
    """``path`` (a folder, or where one would be created) can be written by this process; errors name
    ``shown`` (the output itself)."""
    base = _nearest_existing(path)
    path = shown or path
    if not base.is_dir():
        raise LimaError(
            f"{flag} {path}: {base} is a file, so no folder can be made under it; choose another location"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".lima-probe-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LimaError(
            f"{flag} {path}: cannot write in {base} ({exc.strerror or exc}); choose a writable location"
        ) from None


def check_out_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` is (or can become) a writable folder; an existing file there is refused."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LimaError(
            f"{flag} {path}: an existing file, but this command writes a folder there; "
            "choose a folder path (or move the file away)"
        )
    _check_writable(path, flag)
    return path


def check_out_file(path: str | os.PathLike, what: str = "output", flag: str = "--out") -> Path:
    """``path`` is (or can become) a writable file; an existing folder there is refused."""
    path = Path(path)
    if path.is_dir():
        raise LimaError(
            f"{flag} {path}: a folder, but this command writes one {what} file; "
            f"give a file path such as {path / ('out.jsonl' if what == 'JSONL' else 'out')}"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise LimaError(f"{flag} {path}: the file is read-only; choose another --out or make it writable")
    _check_writable(path.parent, flag, path)
    return path
