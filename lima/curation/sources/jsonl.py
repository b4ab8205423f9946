"""JSON-lines (and JSON-array) inputs: project records, LIMA ``train.jsonl``, FastChat/ShareGPT, Alpaca,
``messages`` lists, and Reddit/pushshift submissions with their top comments.

The format is sniffed from the first object of a file. A JSONL file can be read by byte range (a shard):
a shard owns every line that *starts* inside ``[start, end)``. A JSON array is read whole.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lima.core.conversations import default_source_for, sniff_format, strip_preamble, to_example
from lima.core.errors import LimaError, RecordError
from lima.core.io import parse_json_document
from lima.core.record import Example
from lima.curation.config import GenericFilters, RedditFilters
from lima.curation.filters import language_reason, length_reason
from lima.curation.types import Drop, ShardCounts

FORMATS = ("records", "lima", "fastchat", "alpaca", "messages", "reddit", "natinst")
_REDDIT_TAG = re.compile(r"^\s*\[(?:WP|SP|EU|CW|OT|IP|PI|TT|RF|MP)\]\s*", re.I)
_GONE = {"[removed]", "[deleted]", ""}
__all__ = ["FORMATS", "default_source_for", "read_jsonl", "sniff_format", "strip_preamble"]


def _opener(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def first_object(path: Path) -> Any:
    """The first JSON object of a JSONL file or JSON array (for sniffing), or None."""
    try:
        with _opener(path) as fh:
            head = fh.read(1 << 16).lstrip(b"\xef\xbb\xbf").lstrip()
    except (OSError, EOFError) as exc:
        raise LimaError(f"{path}: cannot read ({exc})") from None
    if not head:
        raise LimaError(f"{path}: empty file; expected JSON lines or a JSON array")
    if head.startswith(b"["):
        array = _load_array(path)
        return array[0] if array else None
    for line in head.splitlines():
        if line.strip():
            try:
                return json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _task_head(head)
    return None


def _task_head(head: bytes) -> dict[str, Any] | None:
    """A pretty-printed JSON object that is a Natural Instructions task (``"Definition"`` near the top): its
    head is enough to name the format; the task reader validates the whole file."""
    if head.startswith(b"{") and b'"Definition"' in head:
        return {"Definition": None, "Instances": None}
    return None


def _load_array(path: Path) -> list[Any]:
    with _opener(path) as fh:
        data = parse_json_document(path, fh.read())
    if not isinstance(data, list):
        raise LimaError(f"{path}: expected a JSON array of objects or JSON lines")
    return data


class BadLine(str):
    """A line that is not a JSON value (the string is the reason)."""


class Rejection(str):
    """The reason a record makes no example (the string), with the field at fault in ``detail``."""

    detail: str = ""

    def __new__(cls, reason: str, detail: str = "") -> Rejection:
        obj = super().__new__(cls, reason)
        obj.detail = detail
        return obj


def iter_objects(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[str, Any]]:
    """(position, object) for each record in the shard; an undecodable line gives a :class:`BadLine`."""
    is_array = False
    if start == 0:  # (a byte-order mark is 3 bytes: strip it from a whole head, not from the first byte)
        with _opener(path) as fh:
            is_array = fh.read(1 << 12).removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")
    if is_array:
        for i, obj in enumerate(_load_array(path)):
            yield f"{i}", obj
        return
    with _opener(path) as fh:
        if start:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # a partial line belongs to the previous shard
        while True:
            pos = fh.tell()
            if end is not None and pos >= end:
                return
            raw = fh.readline()
            if not raw:
                return
            if not raw.strip():
                continue
            try:
                yield f"{pos}", json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError:
                yield f"{pos}", BadLine("not_utf8")
            except json.JSONDecodeError:
                yield f"{pos}", BadLine("bad_json")


def _to_example(
    fmt: str,
    obj: Any,
    path: Path,
    pos: str,
    rules: GenericFilters,
    reddit: RedditFilters,
    default_source: str,
) -> Example | str:
    """An Example, or the name of the reason the object does not make one."""
    if not isinstance(obj, dict):
        return "bad_record"
    rid = str(obj.get("id") or f"{path.stem}-{pos}")
    if fmt == "records":
        try:
            return Example.from_dict(obj, f"{path}@{pos}")
        except RecordError:
            return "bad_record"
    if fmt == "reddit":
        return _reddit(obj, rid, reddit)
    return to_example(fmt, obj, rid, default_source, rules.strip_preamble)


def _reddit(obj: dict[str, Any], rid: str, rules: RedditFilters) -> Example | str:
    title = obj.get("title")
    comments = obj.get("comments") or obj.get("top_comments") or []
    if not isinstance(title, str) or not isinstance(comments, list):
        return "bad_record"
    usable = [
        c
        for c in comments
        if isinstance(c, dict)
        and isinstance(c.get("body"), str)
        and c["body"].strip() not in _GONE
        and c.get("author") != "AutoModerator"
    ]
    if not usable:
        return "no_answer"
    scores = []
    for i, comment in enumerate(usable):
        score = _score(comment.get("score"))
        if score is None:
            return Rejection("bad_score", f"comments[{i}].score: {comment.get('score')!r} is not a number")
        scores.append(score)
    best = max(range(len(usable)), key=scores.__getitem__)
    top = usable[best]
    if rules.min_score is not None and scores[best] < rules.min_score:
        return "answer_score"
    prompt = _REDDIT_TAG.sub("", title).strip() if rules.strip_tags else title.strip()
    body = obj.get("selftext") if isinstance(obj.get("selftext"), str) else ""
    if body.strip() not in _GONE:
        prompt = f"{prompt}\n\n{body.strip()}"
    subreddit = str(obj.get("subreddit") or "reddit")
    return Example(
        id=f"reddit-{rid}",
        source="reddit",
        domain=subreddit,
        messages=[{"role": "user", "content": prompt}, {"role": "assistant", "content": top["body"].strip()}],
        meta={
            "score": scores[best],
            "submission_score": _score(obj.get("score")),
            "group": "reddit",
            "url": obj.get("permalink") or obj.get("url"),
        },
    )


def _score(value: Any) -> int | None:
    """A vote count as dumps write it (42, 42.0, "42", missing = 0); None when it is not a number."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def read_jsonl(
    path: Path,
    fmt: str,
    counts: ShardCounts,
    generic: GenericFilters,
    reddit: RedditFilters,
    language: str | None,
    start: int = 0,
    end: int | None = None,
) -> Iterator[Example | Drop]:
    default_source = default_source_for(path, fmt)
    for pos, obj in iter_objects(path, start, end):
        counts.rows_in += 1
        result = (
            obj
            if isinstance(obj, BadLine)
            else _to_example(fmt, obj, path, pos, generic, reddit, default_source)
        )
        if isinstance(result, str):
            counts.drop(result)
            rid = str(obj.get("id") if isinstance(obj, dict) and obj.get("id") else f"{path.stem}-{pos}")
            detail = f"{path.name}@{pos}: {result.detail}" if isinstance(result, Rejection) else ""
            yield Drop(id=rid, source=default_source, reason=result, stage="read", detail=detail)
            continue
        rules_min, rules_max = (
            (reddit.min_chars, reddit.max_chars)
            if fmt == "reddit"
            else (generic.min_chars, generic.max_chars)
        )
        reason = length_reason(result.response, rules_min, rules_max) or language_reason(
            result.response, language
        )
        if reason:
            counts.drop(reason)
            yield Drop(
                id=result.id,
                source=result.source,
                domain=result.domain,
                reason=reason,
                prompt=result.prompt,
                response=result.response,
            )
            continue
        counts.kept += 1
        yield result
