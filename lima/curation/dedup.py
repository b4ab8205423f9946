"""Near-duplicate removal with MinHash LSH (datasketch) on prompts and on responses.

Candidates are visited best first (highest score, then id), so of a near-duplicate pair the better one stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from datasketch import MinHash, MinHashLSH

from lima.core.record import Example
from lima.curation.config import DedupConfig

_TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int) -> set[bytes]:
    words = _TOKEN.findall(text.lower())
    if len(words) < n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def minhash(text: str, config: DedupConfig) -> MinHash | None:
    grams = shingles(text, config.shingle)
    if not grams:
        return None
    m = MinHash(num_perm=config.num_perm, seed=1)
    m.update_batch(list(grams))
    return m


def score_key(example: Example) -> tuple[float, str]:
    score = example.meta.get("score")
    return (-float(score) if isinstance(score, int | float) else 0.0, example.id)


def near_duplicates(examples: list[Example], config: DedupConfig) -> Iterator[tuple[Example, str, str]]:
    """Yield (dropped example, reason, id of the example it duplicates); the caller keeps the rest."""
    indexes = {
        field: MinHashLSH(threshold=config.threshold, num_perm=config.num_perm) for field in config.fields
    }
    for example in sorted(examples, key=score_key):
        hashes = {}
        duplicate = None
        for field in config.fields:
            text = example.prompt if field == "prompt" else example.response
            m = minhash(text, config)
            if m is None:
                continue
            hits = indexes[field].query(m)
            if hits:
                duplicate = (f"near_duplicate_{field}", sorted(hits)[0])
                break
            hashes[field] = m
        if duplicate is not None:
            yield example, duplicate[0], duplicate[1]
            continue
        for field, m in hashes.items():
            indexes[field].insert(example.id, m)
