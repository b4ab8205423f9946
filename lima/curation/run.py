"""``run_curation``: dumps → shards (filters, in parallel) → dedup → quality → dev split → selection →
``train.jsonl``, ``dev.jsonl``, ``rejected.jsonl.gz``, ``curation.json``, ``report.html``/``report.md``.

Final files are written only after everything before them succeeded, each atomically, and any left from
an earlier run are removed first: a failed run never leaves a ``train.jsonl`` that looks complete.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.io import atomic_open, write_json
from lima.core.manifest import RunManifest
from lima.core.record import Example, write_records
from lima.curation.config import CurateConfig, resolve_path
from lima.curation.counts import count_run, report_examples, train_stats
from lima.curation.empty import EmptyCurationError, empty_message
from lima.curation.files import DEV, OUTPUTS, REJECTED, SUMMARY, TRAIN, WORK
from lima.curation.select import (
    dev_plan,
    dev_size_cap,
    group_of,
    order_domain,
    scale_quotas,
    select,
    split_dev,
)
from lima.curation.shortfall import shortfalls
from lima.curation.types import Drop


@dataclass
class CurationResult:
    train_path: Path
    dev_path: Path | None
    report_html: Path
    report_md: Path
    counts: dict[str, Any]
    out_dir: Path
    rejected_path: Path = field(default=Path())


def run_curation(config: CurateConfig, out_dir: Path, inputs: list[Path] | None = None) -> CurationResult:
    """Curate ``inputs`` (default: ``config.inputs``) into ``out_dir``; see the module docstring."""
    out_dir = Path(out_dir)
    paths = [resolve_path(p) for p in (inputs if inputs is not None else config.inputs)]
    if inputs is not None:
        config = config.model_copy(update={"inputs": [str(p) for p in paths]})
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        (out_dir / name).unlink(missing_ok=True)
    with RunManifest(out_dir, "curate", config, inputs=paths, seed=config.seed) as manifest:
        result = _curate(config, out_dir, paths)
        manifest.update(outputs={k: str(v) for k, v in _outputs(result).items()}, counts=result.counts)
    return result


def _outputs(result: CurationResult) -> dict[str, Path | None]:
    return {
        "train": result.train_path,
        "dev": result.dev_path,
        "rejected": result.rejected_path,
        "report_html": result.report_html,
        "report_md": result.report_md,
    }


def _progress():
    from tqdm.auto import tqdm

    return tqdm(desc="shards", unit="shard", file=sys.stderr, disable=None)


def _curate(config: CurateConfig, out_dir: Path, paths: list[Path]) -> CurationResult:
    from lima.curation.executor import run_shards
    from lima.curation.shards import discover
    from lima.curation.steps import DROPPED, KEPT, load_site_groups, shard_dir, site_group

    shards = discover(paths, config.shard_bytes)
    work = out_dir / WORK
    bar = _progress()
    bar.total = len(shards)
    try:
        summaries = run_shards(shards, config, str(work), progress=lambda s: bar.update(1))
    finally:
        bar.close()

    candidates: list[Example] = []
    for shard in shards:
        with open(shard_dir(work, shard) / KEPT, encoding="utf-8") as fh:
            candidates.extend(Example.from_dict(json.loads(line)) for line in fh)
    loaded = Counter(e.source for e in candidates)
    late_drops: list[Drop] = []

    def drop(example: Example, reason: str, stage: str, detail: str = "") -> None:
        late_drops.append(
            Drop(
                id=example.id,
                source=example.source,
                domain=example.domain,
                reason=reason,
                stage=stage,
                prompt=example.prompt,
                response=example.response,
                detail=detail,
            )
        )

    # Exact id clashes (the same record given twice): keep the first.
    seen: set[str] = set()
    unique = []
    for example in candidates:
        if example.id in seen:
            drop(example, "duplicate_id", "dedup")
        else:
            seen.add(example.id)
            unique.append(example)
    candidates = unique

    if config.dedup.enabled:
        from lima.curation.dedup import near_duplicates

        gone = set()
        for example, reason, twin in near_duplicates(candidates, config.dedup):
            drop(example, reason, "dedup", detail=f"near-duplicate of {twin}")
            gone.add(example.id)
        candidates = [e for e in candidates if e.id not in gone]

    quotas = config.selection.quotas or {}
    through = set(config.selection.pass_through) - set(quotas)  # a quota for the group wins: it is sampled
    if quotas:
        for example in [e for e in candidates if group_of(e) not in quotas and group_of(e) not in through]:
            drop(example, "no_quota", "select", detail=f"group {group_of(example)} has no quota")
        candidates = [e for e in candidates if group_of(e) in quotas or group_of(e) in through]

    dev_file: list[Example] = []
    if config.dev.file:  # a hand-written dev set instead of a split; its prompts leave the candidates
        from lima.core.conversations import read_conversation_file

        dev_file = read_conversation_file(resolve_path(config.dev.file), "dev")
        dev_prompts = {e.prompt.strip() for e in dev_file}
        for example in [e for e in candidates if e.prompt.strip() in dev_prompts]:
            drop(example, "in_dev_file", "select", detail=f"its prompt is in {config.dev.file}")
        candidates = [e for e in candidates if e.prompt.strip() not in dev_prompts]

    quality_problems: dict[str, int] = {}
    if config.quality is not None:
        from lima.curation.quality import score_quality

        quality_problems = score_quality(candidates, config.quality, out_dir / "quality_cache.sqlite")
        if config.quality.min_rating is not None:
            low = [e for e in candidates if (e.meta.get("quality") or 0) < config.quality.min_rating]
            for example in low:
                drop(example, "low_quality", "quality", detail=f"rated {example.meta.get('quality')}")
            low_ids = {e.id for e in low}
            candidates = [e for e in candidates if e.id not in low_ids]

    uniform = config.selection.uniform_groups
    sampled = [e for e in candidates if group_of(e) not in through]
    passed = [e for e in candidates if group_of(e) in through]
    requested = 0 if config.dev.file else config.dev.size
    dev_size = dev_size_cap(requested, len(sampled), config.dev.max_fraction)
    asked = quotas
    if config.selection.scale_quotas and quotas:
        quotas = scale_quotas(sampled, quotas)
    plan = dev_plan(sampled, dev_size, quotas, config.dev.groups, config.dev.from_short_groups)
    dev = dev_file or split_dev(sampled, plan, config.selection.temperature, config.seed, uniform)
    dev_ids = {e.id for e in dev}
    pool = [e for e in sampled if e.id not in dev_ids]

    embeddings = None
    if config.selection.order == "diversity":
        from lima.curation.embed import embed

        vectors = embed([f"{e.prompt}\n{e.response}" for e in pool], show_progress=True)
        embeddings = {e.id: v for e, v in zip(pool, vectors, strict=True)}

    def orderer(items: list[Example]) -> list[Example]:
        return order_domain(
            items,
            config.selection.order,
            config.seed,
            embeddings,
            config.selection.diversity_threshold,
            config.selection.score_by,
        )

    train = select(pool, quotas, config.selection.temperature, config.seed, orderer, uniform) + passed
    train_ids = {e.id for e in train}
    for example in pool:
        if example.id not in train_ids:
            drop(example, "not_selected", "select", detail=f"quota of group {group_of(example)} filled")

    for example in (*train, *dev):
        example.meta.setdefault("group", group_of(example))

    counts = count_run(summaries, shards, work, loaded, candidates, late_drops, dev, train, asked)
    if quotas != asked:
        counts["scaled_quotas"] = quotas
    counts["quality_problems"] = quality_problems
    if dev_size < requested:
        counts["dev_capped"] = {
            "requested": requested,
            "cap": dev_size,
            "candidates": len(sampled),
            "max_fraction": config.dev.max_fraction,
        }
    if len(dev) < dev_size:  # groups short of their quota gave nothing to dev
        counts["dev_short"] = {"requested": dev_size, "drawn": len(dev), "plan": plan}
    if dev_file:
        counts["dev_file"] = str(config.dev.file)
    counts["pass_through"] = sorted(through)
    sites = load_site_groups(config)  # which Stack Exchange groups the inputs can feed at all
    counts["stackexchange_groups"] = sorted(
        {
            site_group(s.domain, sites, config.default_site_group)
            for s in shards
            if s.format == "stackexchange"
        }
    )
    counts["shortfalls"] = shortfalls(counts, config)

    rejected_path = out_dir / REJECTED
    with atomic_open(rejected_path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as fh:
        for shard in shards:
            with gzip.open(shard_dir(work, shard) / DROPPED, "rt", encoding="utf-8") as src:
                for line in src:
                    fh.write(line)
        for item in late_drops:
            fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")

    dev_path = out_dir / DEV if (requested > 0 or dev_file) and train else None
    if dev_path is not None:
        write_records(dev_path, dev)
    write_json(
        out_dir / SUMMARY,
        {
            "counts": counts,
            "stats": train_stats(train, dev, config),
            "examples": report_examples(train, late_drops, work, shards, config.report.examples),
        },
    )

    from lima.curation.report import write_reports

    report_html, report_md = write_reports(out_dir, config, train)
    if not train:  # a stage that produces nothing is not a success: the report says why, no train.jsonl
        raise EmptyCurationError(empty_message(counts, config, report_html), counts)
    write_records(out_dir / TRAIN, train)  # last: its presence means the run finished
    return CurationResult(out_dir / TRAIN, dev_path, report_html, report_md, counts, out_dir, rejected_path)
