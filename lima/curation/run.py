"""``run_curation``: dumps → shards (filters, in parallel) → dedup → quality → dev split → selection →
``train.jsonl``, ``dev.jsonl``, ``rejected.jsonl.gz``, ``curation.json``, ``report.html``/``report.md``.

Final files are written only after everything before them succeeded, each atomically, and any left from
an earlier run are removed first: a failed run never leaves a ``train.jsonl`` that looks complete.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.io import atomic_open, write_json
from lima.core.manifest import RunManifest
from lima.core.record import Example, write_records
from lima.curation.config import CurateConfig, resolve_path
from lima.curation.empty import EmptyCurationError, empty_message
from lima.curation.files import DEV, OUTPUTS, REJECTED, SUMMARY, TRAIN, WORK
from lima.curation.select import dev_size_cap, group_of, order_domain, select, split_dev
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
    from lima.curation.steps import DROPPED, KEPT, shard_dir

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
    if quotas:
        for example in [e for e in candidates if group_of(e) not in quotas]:
            drop(example, "no_quota", "select", detail=f"group {group_of(example)} has no quota")
        candidates = [e for e in candidates if group_of(e) in quotas]

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
    dev_size = dev_size_cap(config.dev.size, len(candidates), config.dev.max_fraction)
    dev = split_dev(
        candidates, dev_size, quotas, config.dev.groups, config.selection.temperature, config.seed, uniform
    )
    dev_ids = {e.id for e in dev}
    pool = [e for e in candidates if e.id not in dev_ids]

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

    train = select(pool, quotas, config.selection.temperature, config.seed, orderer, uniform)
    train_ids = {e.id for e in train}
    for example in pool:
        if example.id not in train_ids:
            drop(example, "not_selected", "select", detail=f"quota of group {group_of(example)} filled")

    for example in (*train, *dev):
        example.meta.setdefault("group", group_of(example))

    counts = _counts(summaries, shards, work, loaded, candidates, late_drops, dev, train, quotas)
    counts["quality_problems"] = quality_problems
    if dev_size < config.dev.size:
        counts["dev_capped"] = {
            "requested": config.dev.size,
            "cap": dev_size,
            "candidates": len(candidates),
            "max_fraction": config.dev.max_fraction,
        }

    rejected_path = out_dir / REJECTED
    with atomic_open(rejected_path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as fh:
        for shard in shards:
            with gzip.open(shard_dir(work, shard) / DROPPED, "rt", encoding="utf-8") as src:
                for line in src:
                    fh.write(line)
        for item in late_drops:
            fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")

    dev_path = out_dir / DEV if config.dev.size > 0 and train else None
    if dev_path is not None:
        write_records(dev_path, dev)
    write_json(
        out_dir / SUMMARY,
        {
            "counts": counts,
            "stats": _stats(train, dev, config),
            "examples": _examples(train, late_drops, work, shards, config.report.examples),
        },
    )

    from lima.curation.report import write_reports

    report_html, report_md = write_reports(out_dir, config, train)
    if not train:  # a stage that produces nothing is not a success: the report says why, no train.jsonl
        raise EmptyCurationError(empty_message(counts, config, report_html), counts)
    write_records(out_dir / TRAIN, train)  # last: its presence means the run finished
    return CurationResult(out_dir / TRAIN, dev_path, report_html, report_md, counts, out_dir, rejected_path)


def _counts(summaries, shards, work, loaded, candidates, late_drops, dev, train, quotas) -> dict[str, Any]:
    from lima.curation.steps import DROPPED, shard_dir

    sources: dict[str, Counter] = defaultdict(Counter)
    reasons: Counter = Counter()
    reasons_by_source: dict[str, Counter] = defaultdict(Counter)
    for shard in shards:
        with gzip.open(shard_dir(work, shard) / DROPPED, "rt", encoding="utf-8") as fh:
            for line in fh:
                item = json.loads(line)
                sources[item["source"]]["in"] += 1
                sources[item["source"]]["filtered_out"] += 1
                reasons[item["reason"]] += 1
                reasons_by_source[item["source"]][item["reason"]] += 1
    for source, n in loaded.items():
        sources[source]["in"] += n
    for item in late_drops:
        reasons[item.reason] += 1
        reasons_by_source[item.source][item.reason] += 1
        if item.stage == "dedup":
            sources[item.source]["duplicates"] += 1
    for example in candidates:
        sources[example.source]["candidates"] += 1
    for example in dev:
        sources[example.source]["dev"] += 1
    for example in train:
        sources[example.source]["train"] += 1
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"candidates": 0, "dev": 0, "train": 0})
    for example in candidates:
        groups[group_of(example)]["candidates"] += 1
    for example in dev:
        groups[group_of(example)]["dev"] += 1
    for example in train:
        groups[group_of(example)]["train"] += 1
    for group, quota in quotas.items():
        groups[group]["quota"] = quota
    skipped: Counter = Counter()
    for summary in summaries:
        skipped.update(summary.get("skipped_rows", {}))
    keys = ("in", "filtered_out", "duplicates", "candidates", "dev", "train")
    return {
        "sources": {s: {k: c.get(k, 0) for k in keys} for s, c in sorted(sources.items())},
        "reasons": dict(reasons.most_common()),
        "reasons_by_source": {s: dict(c.most_common()) for s, c in sorted(reasons_by_source.items())},
        "groups": {g: dict(v) for g, v in sorted(groups.items())},
        "domains_train": dict(Counter(e.domain or e.source for e in train).most_common()),
        "skipped_rows": dict(skipped.most_common()),
        "shards": [
            {k: s[k] for k in ("shard", "path", "format", "rows_in", "kept", "skipped")} for s in summaries
        ],
        "train": len(train),
        "dev": len(dev),
    }


def _token_counter(config: CurateConfig):
    if config.report.tokenizer:
        from lima.core.models import load_tokenizer

        tokenizer = load_tokenizer(config.report.tokenizer)
        return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
    from lima.curation.embed import minilm_tokenizer

    tokenizer = minilm_tokenizer()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def _stats(train: list[Example], dev: list[Example], config: CurateConfig) -> dict[str, Any]:
    count_tokens = _token_counter(config)
    return {
        "tokenizer": config.report.tokenizer or "all-MiniLM-L6-v2 (WordPiece)",
        "train": [
            {
                "id": e.id,
                "source": e.source,
                "domain": e.domain,
                "group": group_of(e),
                "prompt_chars": len(e.prompt),
                "response_chars": len(e.response),
                "prompt_tokens": count_tokens(e.prompt),
                "response_tokens": count_tokens(e.response),
                "score": e.meta.get("score"),
                "quality": e.meta.get("quality"),
            }
            for e in train
        ],
        "dev_ids": [e.id for e in dev],
    }


def _examples(train: list[Example], late_drops: list[Drop], work: Path, shards, n: int) -> dict[str, Any]:
    """A few kept and rejected examples (with text) for the report, chosen deterministically."""
    from lima.curation.steps import DROPPED, shard_dir

    kept = [
        {"id": e.id, "domain": e.domain, "prompt": e.prompt[:600], "response": e.response[:1200]}
        for e in sorted(train, key=lambda e: e.id)[:: max(1, len(train) // max(n, 1))][:n]
    ]
    rejected: list[dict[str, Any]] = []
    seen_reasons: set[str] = set()
    pools = [d.to_dict() for d in late_drops if d.reason not in ("not_selected", "no_quota")]
    for shard in shards:
        with gzip.open(shard_dir(work, shard) / DROPPED, "rt", encoding="utf-8") as fh:
            for line in fh:
                item = json.loads(line)
                if item.get("response"):
                    pools.append(item)
                if len(pools) > 2000:
                    break
    for item in pools:  # one example per reason first, for variety
        if item.get("response") and item["reason"] not in seen_reasons and len(rejected) < n:
            seen_reasons.add(item["reason"])
            rejected.append(item)
    return {"kept": kept, "rejected": rejected}
