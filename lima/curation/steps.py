"""The per-shard step: read → cheap filters → convert → text filters, written under ``WORK/<shard>/``.

A shard is finished when its ``.done`` marker exists and carries the same fingerprint (shard, file size and
mtime, and the config parts that affect it); reruns skip finished shards.
"""

from __future__ import annotations

import gzip
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from lima.core.errors import LimaError
from lima.core.io import atomic_open, stable_hash, write_json
from lima.core.record import Example
from lima.curation.config import CurateConfig, resolve_path
from lima.curation.types import Drop, Shard, ShardCounts

KEPT, DROPPED, COUNTS, DONE = "kept.jsonl", "dropped.jsonl.gz", "counts.json", ".done"


def load_site_groups(config: CurateConfig) -> dict[str, str]:
    """Stack Exchange site → "stem" | "other", from ``site_groups_file``."""
    path = resolve_path(config.site_groups_file)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LimaError(
            f"{path}: cannot read the site → group mapping ({exc}); fix site_groups_file"
        ) from None
    groups: dict[str, str] = {}
    for group in ("stem", "other"):
        for site in data.get(group) or []:
            groups[str(site).lower()] = group
    return groups


def site_group(site: str, groups: dict[str, str], default: str) -> str:
    site = site.lower()
    if site in groups:
        return groups[site]
    short = site.replace(".stackexchange.com", "").replace(".com", "")
    return groups.get(short, default)


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of this package's source: a finished shard is reused only by the same curation code."""
    package = Path(__file__).resolve().parent
    return stable_hash(
        [[str(p.relative_to(package)), p.read_text(encoding="utf-8")] for p in sorted(package.rglob("*.py"))]
    )


def fingerprint(shard: Shard, config: CurateConfig, groups: dict[str, str]) -> str:
    stat = os.stat(shard.path)
    relevant = {
        "filters": config.filters.model_dump(mode="json"),
        "seed": config.seed,
        "groups": groups,
        "default_group": config.default_site_group,
    }
    return stable_hash([shard.__dict__, stat.st_size, stat.st_mtime_ns, relevant, code_version()])


def shard_dir(work_dir: Path, shard: Shard) -> Path:
    return work_dir / shard.name


def is_done(work_dir: Path, shard: Shard, fp: str) -> bool:
    marker = shard_dir(work_dir, shard) / DONE
    return marker.exists() and marker.read_text().strip() == fp


def _records(shard: Shard, config: CurateConfig, groups: dict[str, str], counts: ShardCounts):
    path = Path(shard.path)
    language = config.filters.language
    if shard.format == "stackexchange":
        from lima.curation.sources.stackexchange import read_stackexchange

        group = site_group(shard.domain, groups, config.default_site_group)
        return read_stackexchange(path, config.filters.stackexchange, config.seed, counts, group, language)
    if shard.format == "wikihow":
        from lima.curation.sources.wikihow import read_wikihow

        return read_wikihow(path, config.filters.wikihow, counts, language)
    if shard.format == "natinst":
        from lima.curation.sources.natinst import read_natinst

        return read_natinst(path, config.filters.natinst, config.seed, counts, language)
    from lima.curation.sources.jsonl import read_jsonl

    return read_jsonl(
        path,
        shard.format,
        counts,
        config.filters.generic,
        config.filters.reddit,
        language,
        shard.start,
        shard.end,
    )


def process_shard(shard: Shard, config_data: dict[str, Any], work_dir: str) -> dict[str, Any]:
    """Run one shard (in any worker process) and return its counts; skip it when already done."""
    try:
        return _process_shard(shard, config_data, work_dir)
    except LimaError as exc:
        message = str(exc)
    # Re-raised outside the handler: no chained parser objects (unpicklable) travel back to the caller.
    raise LimaError(message)


def _process_shard(shard: Shard, config_data: dict[str, Any], work_dir: str) -> dict[str, Any]:
    config = CurateConfig.model_validate(config_data)
    work = Path(work_dir)
    groups = load_site_groups(config)
    fp = fingerprint(shard, config, groups)
    out = shard_dir(work, shard)
    if is_done(work, shard, fp):
        summary = json.loads((out / COUNTS).read_text())
        summary["skipped"] = True
        return summary
    out.mkdir(parents=True, exist_ok=True)
    (out / DONE).unlink(missing_ok=True)
    counts = ShardCounts()
    with (
        atomic_open(out / KEPT) as kept_fh,
        atomic_open(out / DROPPED, "wb") as raw,
        gzip.open(raw, "wt", encoding="utf-8") as dropped_fh,
    ):
        for item in _records(shard, config, groups, counts):
            if isinstance(item, Example):
                kept_fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            elif isinstance(item, Drop):
                dropped_fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
    summary = {
        "shard": shard.name,
        "path": shard.path,
        "format": shard.format,
        "rows_in": counts.rows_in,
        "kept": counts.kept,
        "reasons": counts.reasons,
        "skipped_rows": counts.skipped_rows,
        "repairs": counts.repairs,
    }
    write_json(out / COUNTS, summary)
    (out / DONE).write_text(fp + "\n")  # last: the marker is what says "finished"
    summary["skipped"] = False
    return summary
