"""Small types passed between curation steps."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PREVIEW_CHARS = 400


@dataclass
class Drop:
    """A record (or raw row) that did not make it, with the named reason and where it was dropped."""

    id: str
    source: str
    reason: str
    domain: str = ""
    stage: str = "filter"
    prompt: str = ""
    response: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["prompt"] = obj["prompt"][:PREVIEW_CHARS]
        obj["response"] = obj["response"][:PREVIEW_CHARS]
        return {k: v for k, v in obj.items() if v != ""}


@dataclass(frozen=True)
class Shard:
    """One unit of work: a whole file (a Stack Exchange site, a CSV) or a byte range of a big JSONL file."""

    path: str
    format: str
    domain: str = ""
    start: int = 0
    end: int | None = None  # exclusive; None = to the end of the file

    @property
    def name(self) -> str:
        from pathlib import Path

        from lima.core.io import stable_hash

        stem = Path(self.path).name.replace(" ", "_")
        span = "" if self.end is None and self.start == 0 else f"@{self.start}-{self.end}"
        return f"{stem}{span}-{stable_hash([self.path, self.format, self.start, self.end])[:8]}"


@dataclass
class ShardCounts:
    rows_in: int = 0
    kept: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    skipped_rows: dict[str, int] = field(default_factory=dict)  # rows that are not posts (tag wiki, …)
    repairs: dict[str, int] = field(default_factory=dict)  # fixes made to kept records (kind -> count)

    def drop(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def skip(self, kind: str) -> None:
        self.skipped_rows[kind] = self.skipped_rows.get(kind, 0) + 1

    def repair(self, kind: str, n: int = 1) -> None:
        self.repairs[kind] = self.repairs.get(kind, 0) + n
