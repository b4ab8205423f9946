"""What a curation run counts and keeps for its report: per source and group counts, drop reasons, length
statistics of the train set, and a few kept and rejected examples."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from lima.core.record import Example
from lima.curation.config import CurateConfig
from lima.curation.select import group_of
from lima.curation.types import Drop


def count_run(summaries, shards, work, loaded, candidates, late_drops, dev, train, quotas) -> dict[str, Any]:
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
    repairs: Counter = Counter()
    for summary in summaries:
        skipped.update(summary.get("skipped_rows", {}))
        repairs.update(summary.get("repairs", {}))
    keys = ("in", "filtered_out", "duplicates", "candidates", "dev", "train")
    return {
        "sources": {s: {k: c.get(k, 0) for k in keys} for s, c in sorted(sources.items())},
        "reasons": dict(reasons.most_common()),
        "reasons_by_source": {s: dict(c.most_common()) for s, c in sorted(reasons_by_source.items())},
        "groups": {g: dict(v) for g, v in sorted(groups.items())},
        "domains_train": dict(Counter(e.domain or e.source for e in train).most_common()),
        "skipped_rows": dict(skipped.most_common()),
        "repairs": dict(repairs.most_common()),
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


def train_stats(train: list[Example], dev: list[Example], config: CurateConfig) -> dict[str, Any]:
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


def report_examples(
    train: list[Example], late_drops: list[Drop], work: Path, shards, n: int
) -> dict[str, Any]:
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
