"""Small file helpers: atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lima.core.errors import LimaError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temp file beside ``path`` and rename it into place only if the block succeeds.

    A crash or error leaves the previous file (or none) — never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Content hash of a file (hex sha256), streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def path_sha256(path: str | os.PathLike) -> str:
    """Content hash of a file, or of a directory's files (names and contents, in sorted order)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(child.relative_to(path)).encode())
        digest.update(file_sha256(child).encode())
    return digest.hexdigest()


def stable_hash(obj: Any) -> str:
    """Hash of a JSON-serialisable object, independent of dict key order."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def read_jsonl_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a log-style JSONL file we wrote ourselves ([] when absent); a line cut short by a kill is
    skipped. (Data files go through lima.core.record, which reports bad lines instead.)"""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def iter_jsonl_objects(path: str | os.PathLike, what: str = "file") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL input file. A missing file, bytes that are
    not UTF-8, a line that is not JSON or not an object each stop with one ``LimaError`` naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: {what} not found")
    with open(path, encoding="utf-8-sig") as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LimaError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise LimaError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                yield lineno, obj
        except UnicodeDecodeError:
            raise LimaError(
                f"{path}: not UTF-8 text (after line {lineno}); re-save it as UTF-8 (e.g. iconv -t UTF-8)"
            ) from None


def parse_json_document(path: str | os.PathLike, raw: bytes, fix: str = "") -> Any:
    """One whole JSON document read from ``path`` (BOM allowed). Bytes that are not UTF-8 or text that is not
    JSON stop with one ``LimaError`` naming the file and the place; ``fix`` is appended to the JSON error."""
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise LimaError(f"{path}: byte {exc.start}: not UTF-8; re-encode the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise LimaError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}){fix}"
        ) from None


def resolve_path(path: str | os.PathLike, roots: tuple[Path, ...] = ()) -> Path:
    """A path from a config: as given when it exists (absolute, or relative to the working directory),
    else under the first of ``roots`` that holds it, else as given (so the error names what was written)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    for root in roots:
        if (root / candidate).exists():
            return root / candidate
    return candidate
