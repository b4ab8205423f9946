"""One run per output: a lock file that names the process holding it (pid, host, command).

    with OutputLock(out_dir / LOCK_NAME):
        ...  # a second `lima judge --out out_dir` is refused meanwhile, before it sends a request

A lock left by a process that no longer exists on this host (a kill -9, a power cut) is taken over. Under
torchrun only rank 0 takes the lock: the other ranks are the same run.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from lima.core.errors import LimaError

LOCK_NAME = ".lima.lock"
_UNREADABLE_GRACE_S = 10.0  # a lock being written right now is briefly empty


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class OutputLock:
    """An exclusive lock file; ``__enter__`` refuses with the holder's pid, host and command."""

    def __init__(self, path: str | os.PathLike, what: str = "--out") -> None:
        self.path = Path(path)
        self.what = what
        self.held = False
        self.made: list[Path] = []  # folders this lock created: removed again if the run left them empty

    def _stale(self, holder: dict | None) -> bool:
        if holder is None:  # unreadable: stale once it is older than a write takes
            try:
                return time.time() - self.path.stat().st_mtime > _UNREADABLE_GRACE_S
            except OSError:
                return True
        pid = holder.get("pid")
        return holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid)

    def acquire(self) -> None:
        if int(os.environ.get("RANK", "0") or 0) != 0:
            return
        self.made = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(["lima", *sys.argv[1:]]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                if self._stale(holder):
                    self.path.unlink(missing_ok=True)  # its process is gone: take the lock over
                    continue
                who = (
                    f"pid {holder.get('pid')} on {holder.get('host')}: {holder.get('command')}"
                    if holder
                    else "another process"
                )
                raise LimaError(
                    f"{self.what}: another run is writing there ({who}); wait for it to finish or choose "
                    f"another --out. If that process is gone, delete {self.path}"
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            self.held = True
            return
        raise LimaError(f"{self.path}: could not take the lock; delete it and rerun")

    def release(self) -> None:
        if self.held:
            holder = _read(self.path)
            if holder is None or holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False
            for folder in self.made:  # deepest first; a refused run leaves nothing behind
                try:
                    folder.rmdir()
                except OSError:
                    break

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
