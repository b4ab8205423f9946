"""What every ecosystem format shares: reading a JSON list or JSONL with row positions, the result of an
import (rows kept, rows skipped with a reason), and writing JSONL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError

KINDS = ("prompts", "answers", "judgments", "labels", "predictions")


@dataclass
class Row:
    """One source row: where it came from (``file:line`` or ``file[index]``) and its object."""

    where: str
    obj: Any


def load_rows(path: str | os.PathLike) -> list[Row]:
    """The rows of a JSON list (AlpacaEval, most label sets), one JSON object, or a JSONL file (everything
    else), with their positions. The one reader of "a JSON list or JSONL" files; a leading BOM is skipped."""
    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a leading BOM is not part of the JSON
    except UnicodeDecodeError as exc:
        raise LimaError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            f"re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}"
        ) from None
    start = text.lstrip()[:1]
    if start in ("[", "{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if start == "[":
                raise LimaError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        else:
            if isinstance(data, list):
                return [Row(f"{path}[{i}]", obj) for i, obj in enumerate(data)]
            return [Row(f"{path}:1", data)]
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(Row(f"{path}:{lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise LimaError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return rows


def first_object(path: str | os.PathLike) -> dict[str, Any] | None:
    """The first row of a file if it is a JSON object (for format detection), else None. A JSONL file is read
    only up to its first row."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    break
            else:
                return None
        if line.lstrip().startswith("["):
            rows = load_rows(path)
            obj = rows[0].obj if rows else None
        else:
            obj = json.loads(line)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, LimaError):
        return None
    return obj if isinstance(obj, dict) else None


def require(row: Row, *fields: str) -> dict[str, Any]:
    """The row's object, checked to be a JSON object holding ``fields``; a LimaError naming the row if not."""
    obj = row.obj
    if not isinstance(obj, dict):
        raise LimaError(f"{row.where}: expected a JSON object")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise LimaError(f"{row.where}: missing field(s) {', '.join(missing)}")
    return obj


def rest(obj: dict[str, Any], used: Iterable[str]) -> dict[str, Any]:
    """What a source row holds that lima has no field for (kept under ``meta``)."""
    used = set(used)
    return {k: v for k, v in obj.items() if k not in used}


@dataclass
class ImportResult:
    """Converted lines of one kind, plus every skipped source row with the reason."""

    fmt: str
    kind: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)
    notes: dict[str, Any] = field(default_factory=dict)  # format-specific checks (e.g. re-parsing agreement)

    def skip(self, row: Row, reason: str) -> None:
        self.skipped.append((row.where, reason))

    def counts(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for _, reason in self.skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        return {
            "format": self.fmt,
            "kind": self.kind,
            "converted": len(self.lines),
            "skipped": len(self.skipped),
            "skipped_by_reason": reasons,
            **self.notes,
        }


def write_jsonl(path: str | os.PathLike, lines: Iterable[dict[str, Any]]) -> int:
    from lima.core.io import atomic_open

    count = 0
    with atomic_open(path) as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json_list(path: str | os.PathLike, rows: list[dict[str, Any]]) -> int:
    from lima.core.io import atomic_open

    with atomic_open(path) as fh:
        json.dump(rows, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return len(rows)


def generation(
    prompt_id: str,
    prompt: str,
    model: str,
    output: str,
    meta: dict[str, Any] | None = None,
    history: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A ``lima generate``-shaped record for an answer made elsewhere."""
    record: dict[str, Any] = {
        "prompt_id": prompt_id,
        "prompt": prompt,
        "model": model,
        "output": output,
        "settings": {"source": "imported"},
    }
    if history:
        record["history"] = history
    if meta:
        record["meta"] = meta
    return record


def prompt_record(prompt_id: str, source: str, turns: list[str], meta: dict[str, Any]) -> dict[str, Any]:
    """An example record holding the first user turn (later turns of a multi-turn benchmark, which need the
    model's own earlier answers, stay in ``meta["turns"]``)."""
    return {
        "id": prompt_id,
        "source": source,
        "messages": [{"role": "user", "content": turns[0]}],
        "meta": {"turns": turns, **meta} if len(turns) > 1 else meta,
    }


def judgment(
    prompt_id: str,
    prompt: str,
    model_a: str,
    model_b: str,
    output_a: str,
    output_b: str,
    verdict: str | None,
    *,
    preference: float | None = None,
    orders: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``lima judge``-shaped judgment from model A's side (A is the model being evaluated, B the baseline).

    ``preference`` is a soft outcome for A in [0, 1] where the source has one (AlpacaEval's weighted
    annotators); ``orders`` holds one entry per order the source judged, with its positional verdict and level.
    """
    orders = orders or []
    record: dict[str, Any] = {
        "prompt_id": prompt_id,
        "prompt": prompt,
        "model_a": model_a,
        "model_b": model_b,
        "output_a": output_a,
        "output_b": output_b,
        "len_a": len(output_a),
        "len_b": len(output_b),
        "verdict": verdict,
        "consistent": (orders[0]["verdict"] == orders[1]["verdict"]) if len(orders) == 2 else None,
        "error": None,
        "orders": orders,
    }
    if preference is not None:
        record["preference"] = preference
    if meta:
        record["meta"] = meta
    return record
