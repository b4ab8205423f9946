"""Already-curated conversation files → ``messages`` records, for both ``lima curate`` and ``lima train --data``.

Formats, sniffed from the first object: project records (``id, source, messages``), LIMA ``train.jsonl``
(``conversations: [str, ...]``), FastChat/ShareGPT (``conversations: [{from, value}]``), Alpaca
(``instruction, input, output``) and bare ``messages`` lists; each as JSON lines or one JSON array. Reddit dumps
and Natural Instructions task files are named too (so that a reader can say what a file is), but only curation
turns them into examples.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError, RecordError
from lima.core.io import parse_json_document
from lima.core.record import Example, iter_record_results

CONVERSATION_FORMATS = ("lima", "fastchat", "alpaca", "messages")
_PREAMBLE = re.compile(r"^\s*Below is an instruction.*?###\s*Instruction:\s*", re.S | re.I)
_RESPONSE_TAIL = re.compile(r"\s*###\s*Response:\s*$", re.I)
_FROM_ROLE = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
}


def curate_hint(path: Path) -> str:
    """The command that turns ``path`` into a training file (every usable record, counted drops)."""
    out = f"runs/curate/{path.stem.split('.')[0]}"
    return f"lima curate configs/curate/passthrough.yaml --input {path} --out {out}, then --data {out}/train.jsonl"


def sniff_format(obj: Any) -> str | None:
    """The format of one object: records, lima, fastchat, alpaca, messages, reddit, natinst, or None."""
    if not isinstance(obj, dict):
        return None
    if "Definition" in obj and ("Instances" in obj or "Positive Examples" in obj):
        return "natinst"  # a Natural Instructions task file (one object, read by curation)
    conversations = obj.get("conversations")
    if isinstance(conversations, list) and conversations:
        return "lima" if all(isinstance(t, str) for t in conversations) else "fastchat"
    if "messages" in obj:
        return "records" if "source" in obj and "id" in obj else "messages"
    if "instruction" in obj and "output" in obj:
        return "alpaca"
    if "title" in obj and any(k in obj for k in ("comments", "top_comments")):
        return "reddit"
    return None


def strip_preamble(text: str) -> str:
    """Drop the Alpaca preamble (``Below is an instruction … ### Instruction:``) and a ``### Response:`` tail."""
    return _RESPONSE_TAIL.sub("", _PREAMBLE.sub("", text, count=1)).strip()


def to_messages(fmt: str, obj: Any, preamble: bool = True) -> list[dict[str, str]] | str:
    """The ``messages`` of one object in a conversation format, or the reason it makes none (``bad_record``,
    ``no_prompt``, ``no_response``). ``preamble``: strip the Alpaca preamble from user turns."""
    if not isinstance(obj, dict):
        return "bad_record"
    messages: list[dict[str, str]] = []
    if fmt == "lima":
        turns = obj.get("conversations") or []
        if not all(isinstance(t, str) for t in turns):
            return "bad_record"
        messages = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)
        ]
    elif fmt == "fastchat":
        for turn in obj.get("conversations") or []:
            role = _FROM_ROLE.get(str(turn.get("from", "")).lower()) if isinstance(turn, dict) else None
            if role is None or not isinstance(turn.get("value"), str):
                return "bad_record"
            messages.append({"role": role, "content": turn["value"]})
    elif fmt == "messages":
        for turn in obj.get("messages") or []:
            if (
                not isinstance(turn, dict)
                or turn.get("role") not in ("system", "user", "assistant")
                or not isinstance(turn.get("content"), str)
            ):
                return "bad_record"
            messages.append({"role": turn["role"], "content": turn["content"]})
    elif fmt == "alpaca":
        instruction, extra, output = obj.get("instruction"), obj.get("input") or "", obj.get("output")
        if not isinstance(instruction, str) or not isinstance(output, str) or not isinstance(extra, str):
            return "bad_record"
        prompt = f"{instruction.strip()}\n\n{extra.strip()}" if extra.strip() else instruction.strip()
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    else:
        return "bad_record"
    if preamble:
        for m in messages:
            if m["role"] == "user":
                m["content"] = strip_preamble(m["content"])
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        return "no_prompt"
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        return "no_response"
    return messages


def default_source_for(path: Path, fmt: str) -> str:
    """The source (and group) of a converted file's examples: ``lima`` for a LIMA set, else by format."""
    if fmt in ("lima", "fastchat") and "lima" in path.name.lower():
        return "lima"
    return {"fastchat": "sharegpt", "messages": "sharegpt"}.get(fmt, fmt)


def to_example(
    fmt: str, obj: dict[str, Any], rid: str, default_source: str, preamble: bool = True
) -> Example | str:
    """An Example from one object in a conversation format (source from the object, else ``default_source``)."""
    messages = to_messages(fmt, obj, preamble)
    if isinstance(messages, str):
        return messages
    meta = {k: v for k, v in obj.items() if k in ("score", "url", "license") and v is not None}
    source = obj.get("source") if isinstance(obj.get("source"), str) and obj.get("source") else default_source
    meta["group"] = source
    domain = obj.get("domain") if isinstance(obj.get("domain"), str) else ""
    return Example(id=rid, source=source, domain=domain or source, messages=messages, meta=meta)


def _open_bytes(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise RecordError(f"{path}: cannot read ({exc})") from None


def _objects(path: Path, raw: bytes) -> list[tuple[str, Any]]:
    """(where, object) for a JSON array or JSON lines."""
    text = raw.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        data = parse_json_document(path, raw)
        if not isinstance(data, list):
            raise RecordError(f"{path}: expected a JSON array of objects or JSON lines")
        return [(f"{path}: item {i}", obj) for i, obj in enumerate(data)]
    objects = []
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text (byte {exc.start}); re-encode the file as UTF-8") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            objects.append((f"{path}:{lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    return objects


def read_conversation_file(path: str | Path, what: str = "training") -> list[Example]:
    """Every example of a training file in any format above; a record that makes none is an error naming its
    place, and a file that is not training data (prompts only, a raw dump) says so and names the command."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{what} data: {path}: no such file")
    raw = _open_bytes(path)
    if not raw.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"["):
        # JSON lines of project records (or of nothing known) keep their exact line-by-line validation.
        first = next((line for line in raw.splitlines() if line.strip()), b"")
        try:
            fmt = sniff_format(json.loads(first)) if first else "records"
        except (json.JSONDecodeError, UnicodeDecodeError):
            fmt = "records"  # the record reader names the line
        if fmt in ("records", None):
            hint = "" if fmt else f". If it is another format, curate it first: {curate_hint(path)}"
            return _records(path, what, hint)
    try:
        objects = _objects(path, raw)
    except LimaError as exc:
        raise RecordError(f"{what} data: {exc}") from None
    if not objects:
        raise RecordError(f"{what} data: {path}: holds no records")
    fmt = sniff_format(objects[0][1])
    if fmt == "records":
        try:
            return [Example.from_dict(obj, where) for where, obj in objects]
        except RecordError as exc:
            raise RecordError(f"{what} data: {exc}") from None
    if fmt not in CONVERSATION_FORMATS:
        kind = {"reddit": "a Reddit dump", "natinst": "a Natural Instructions task file"}.get(
            fmt or "", "not in a format lima reads as training data"
        )
        raise RecordError(
            f"{what} data: {path}: {kind}; training reads records, LIMA/FastChat, ShareGPT, Alpaca or "
            f"messages files. Curate it first: {curate_hint(path)}"
        )
    source = default_source_for(path, fmt)
    examples, reasons = [], []
    for i, (where, obj) in enumerate(objects):
        result = to_example(fmt, obj, str(obj.get("id") or f"{path.stem}-{i}"), source)
        if isinstance(result, str):
            reasons.append((where, result))
        else:
            examples.append(result)
    if reasons and all(r == "no_response" for _, r in reasons) and not examples:
        raise RecordError(
            f"{what} data: {path}: holds prompts only (no assistant turn in any of its {len(reasons)} "
            f"records): it is a test set, not training data. Answer it with `lima generate "
            f"configs/generate/lima.yaml --prompts {path}`; train on a curated set (`lima curate …`)"
        )
    if reasons:
        where, reason = reasons[0]
        why = {"no_response": "no assistant turn", "no_prompt": "no user turn"}.get(reason, "malformed turns")
        raise RecordError(
            f"{what} data: {where}: {why} ({fmt} format; {len(reasons)} such records). Fix or drop them, "
            f"or let curation drop and count them: {curate_hint(path)}"
        )
    return examples


def _records(path: Path, what: str, hint: str = "") -> list[Example]:
    records = []
    for result in iter_record_results(path):
        if isinstance(result, RecordError):
            raise RecordError(f"{what} data: {result}{hint}")
        records.append(result)
    if not records:
        raise RecordError(f"{what} data: {path}: holds no records; expected one JSON object per line")
    return records
