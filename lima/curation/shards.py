"""Find the dumps under the configured inputs and cut them into shards (the units of parallel work)."""

from __future__ import annotations

from pathlib import Path

from lima.core.errors import LimaError
from lima.curation.sources.jsonl import first_object, sniff_format
from lima.curation.sources.stackexchange import site_of
from lima.curation.types import Shard

JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".ndjson")


def _kind_by_name(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".7z") or name.endswith("posts.xml"):
        return "stackexchange"
    if name.endswith(".csv"):
        return "wikihow"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    return None


def _file_shards(path: Path, shard_bytes: int) -> list[Shard]:
    kind = _kind_by_name(path)
    if kind is None:
        raise LimaError(
            f"{path}: unknown input type; expected Posts.xml, SITE.7z, a wikiHow .csv or .jsonl/.json"
        )
    size = path.stat().st_size
    if size == 0:
        raise LimaError(f"{path}: empty file")
    if kind == "stackexchange":
        return [Shard(str(path), "stackexchange", domain=site_of(path))]
    if kind == "wikihow":
        return [Shard(str(path), "wikihow")]
    fmt = sniff_format(first_object(path))
    if fmt == "natinst":
        return [Shard(str(path), fmt, domain=path.stem)]
    if fmt is None:
        raise LimaError(
            f"{path}: line 1: cannot tell the record format; expected records (id, source, messages), LIMA "
            "(conversations: [str]), FastChat (conversations: [{from, value}]), Alpaca (instruction, output), "
            "messages, Reddit (title, comments), or a Natural Instructions task (Definition, Instances)"
        )
    with open(path, "rb") as fh:
        is_array = fh.read(4096).lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"[")
    if path.suffix == ".gz" or is_array or fmt == "natinst" or size <= shard_bytes:
        return [Shard(str(path), fmt)]
    return [
        Shard(str(path), fmt, start=s, end=min(s + shard_bytes, size)) for s in range(0, size, shard_bytes)
    ]


def discover(inputs: list[Path], shard_bytes: int) -> list[Shard]:
    """Every shard under ``inputs`` (files or directories, searched recursively), in a stable order."""
    if not inputs:
        raise LimaError("no inputs: set `inputs:` in the config or pass --input PATH")
    shards: list[Shard] = []
    for root in (Path(p).resolve() for p in inputs):
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and _kind_by_name(p) is not None)
            if not files:
                raise LimaError(f"{root}: directory holds no dumps (Posts.xml, SITE.7z, .csv, .jsonl, .json)")
            for path in files:
                shards.extend(_file_shards(path, shard_bytes))
        elif root.is_file():
            shards.extend(_file_shards(root, shard_bytes))
        else:
            raise LimaError(f"{root}: no such file or directory (check `inputs` / --input)")
    return shards
