"""The example record shared by every stage: one JSON object per line.

{"id": "...", "source": "stackexchange", "domain": "beer.stackexchange.com",
 "messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}],
 "meta": {"score": 12, "url": "...", "license": "CC BY-SA 3.0"}}
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from lima.core.errors import RecordError
from lima.core.io import atomic_open

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")
FIELDS: tuple[str, ...] = ("id", "source", "domain", "messages", "meta")


@dataclass
class Example:
    """One prompt–response example (possibly multi-turn)."""

    id: str
    source: str
    messages: list[dict[str, str]]
    domain: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The first user turn."""
        return next(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def response(self) -> str:
        """The last assistant turn ('' when there is none, e.g. a test prompt)."""
        for message in reversed(self.messages):
            if message["role"] == "assistant":
                return message["content"]
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "domain": self.domain,
            "messages": self.messages,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, obj: Any, where: str = "<record>") -> Example:
        """Validate ``obj`` and build an Example; errors name ``where`` (file:line) and the field."""
        problems = validate_record(obj)
        if problems:
            raise RecordError(f"{where}: " + "; ".join(problems))
        return cls(
            id=str(obj["id"]),
            source=obj["source"],
            domain=obj.get("domain") or "",
            messages=[{"role": m["role"], "content": m["content"]} for m in obj["messages"]],
            meta=dict(obj.get("meta") or {}),
        )


def validate_record(obj: Any) -> list[str]:
    """Every problem with a record, each as 'field: problem'."""
    if not isinstance(obj, dict):
        return [f"record: expected a JSON object, got {type(obj).__name__}"]
    problems: list[str] = []
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        problems.append(f"{', '.join(unknown)}: unknown field(s); put extra data under 'meta'")
    if not isinstance(obj.get("id"), str | int) or obj.get("id") in ("", None):
        problems.append("id: required, a non-empty string")
    if not isinstance(obj.get("source"), str) or not obj.get("source"):
        problems.append("source: required, a non-empty string (e.g. stackexchange, wikihow, manual)")
    if "domain" in obj and obj["domain"] is not None and not isinstance(obj["domain"], str):
        problems.append("domain: must be a string")
    if "meta" in obj and obj["meta"] is not None and not isinstance(obj["meta"], dict):
        problems.append("meta: must be an object")
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("messages: required, a non-empty list of {role, content}")
        return problems
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(f"messages[{i}]: expected an object with role and content")
            continue
        if message.get("role") not in ROLES:
            problems.append(f"messages[{i}].role: {message.get('role')!r} is not one of {', '.join(ROLES)}")
        if not isinstance(message.get("content"), str):
            problems.append(f"messages[{i}].content: required, a string")
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
        problems.append("messages: needs at least one user turn")
    return problems


def _open_text(path: Path, mode: str = "rt") -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_records(path: str | os.PathLike, skip_invalid: bool = False) -> Iterator[Example]:
    """Stream and validate records from a JSONL (or .jsonl.gz) file.

    An invalid line raises RecordError naming ``file:line: field: problem``; with ``skip_invalid``
    it is skipped instead (callers that count skips use :func:`iter_record_results`).
    """
    for result in iter_record_results(path):
        if isinstance(result, RecordError):
            if skip_invalid:
                continue
            raise result
        yield result


def iter_record_results(path: str | os.PathLike) -> Iterator[Example | RecordError]:
    """Yield an Example or a RecordError per non-blank line, so callers can count problems."""
    path = Path(path)
    if not path.exists():
        raise RecordError(f"{path}: no such file")
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield RecordError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
                    continue
                try:
                    yield Example.from_dict(obj, where)
                except RecordError as exc:
                    yield exc
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text (byte {exc.start}); re-encode the file as UTF-8") from None
    except (OSError, EOFError) as exc:
        raise RecordError(f"{path}: cannot read ({exc})") from None


def load_records(path: str | os.PathLike) -> list[Example]:
    """Read a whole file; raise RecordError on the first invalid line, or if the file holds no records."""
    records = list(read_records(path))
    if not records:
        raise RecordError(f"{path}: holds no records; expected one JSON object per line")
    return records


def write_records(path: str | os.PathLike, records: Iterable[Example | dict[str, Any]]) -> int:
    """Write records atomically (temp file + rename); returns how many were written."""
    path = Path(path)
    count = 0
    mode = "wb" if path.suffix == ".gz" else "w"
    with atomic_open(path, mode) as raw:
        fh = gzip.open(raw, "wt", encoding="utf-8") if path.suffix == ".gz" else raw
        for record in records:
            obj = record.to_dict() if isinstance(record, Example) else record
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
        if fh is not raw:
            fh.close()
    return count


def records_to_dataset(records: Iterable[Example] | str | os.PathLike):
    """Load records into a ``datasets.Dataset`` (meta is kept as a JSON string: its keys vary by source)."""
    from datasets import Dataset

    if isinstance(records, str | os.PathLike):
        records = read_records(records)
    rows = [
        {
            "id": r.id,
            "source": r.source,
            "domain": r.domain,
            "messages": r.messages,
            "meta": json.dumps(r.meta, ensure_ascii=False),
        }
        for r in records
    ]
    return Dataset.from_list(rows)
