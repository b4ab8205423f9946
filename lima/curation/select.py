"""Selection: per-group quotas, temperature sampling over domains, ordering inside a domain, dev split.

Inside a group, the next example comes from domain d with probability p(d) ∝ n_d^(1/τ) (n_d = candidates in
d, renormalised over the domains that still have candidates): τ = 1 is proportional, τ → ∞ uniform. Groups
named in ``uniform_groups`` draw their domains uniformly (LIMA's wikiHow: a category, then an article in it).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Collection

import numpy as np

from lima.core.io import stable_hash
from lima.core.record import Example


def group_of(example: Example) -> str:
    return str(example.meta.get("group") or example.source)


def tau_probabilities(sizes: dict[str, int], temperature: float) -> dict[str, float]:
    weights = {d: n ** (1.0 / temperature) for d, n in sizes.items() if n > 0}
    total = sum(weights.values())
    return {d: w / total for d, w in weights.items()}


def tau_sample(
    by_domain: dict[str, list[Example]], quota: int, temperature: float, rng: random.Random
) -> list[Example]:
    """Draw up to ``quota`` examples: a domain by τ-sampling, then that domain's next example in order."""
    queues = {d: list(items) for d, items in sorted(by_domain.items()) if items}
    sizes = {d: len(items) for d, items in queues.items()}
    taken: list[Example] = []
    while len(taken) < quota and queues:
        domains = sorted(queues)
        probs = tau_probabilities({d: sizes[d] for d in domains}, temperature)
        domain = rng.choices(domains, weights=[probs[d] for d in domains])[0]
        taken.append(queues[domain].pop(0))
        if not queues[domain]:
            del queues[domain]
    return taken


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def rank_key(example: Example, score_by: str = "question") -> tuple[float, float]:
    """Sort key (lower first) of order ``score``: the question's score, then the answer's (LIMA), where the
    record has a question score; else, or with ``score_by="answer"``, the (answer) score alone."""
    meta = example.meta
    answer = _number(meta.get("score"))
    if score_by == "question" and "question_score" in meta:
        return (-_number(meta["question_score"]), -answer)
    return (-answer, 0.0)


def order_domain(
    items: list[Example],
    order: str,
    seed: int,
    embeddings: dict[str, np.ndarray] | None = None,
    threshold: float = 0.9,
    score_by: str = "question",
) -> list[Example]:
    """Candidates of one domain in the order they should be taken."""
    tiebreak = {e.id: stable_hash([seed, e.id]) for e in items}
    if order == "random":
        return sorted(items, key=lambda e: tiebreak[e.id])
    if order == "length":  # Long-Is-More: the longest responses first
        return sorted(items, key=lambda e: (-len(e.response), tiebreak[e.id]))
    if order == "quality":
        return sorted(
            items,
            key=lambda e: (-_number(e.meta.get("quality")), rank_key(e, score_by), tiebreak[e.id]),
        )
    by_score = sorted(items, key=lambda e: (rank_key(e, score_by), tiebreak[e.id]))
    if order == "diversity" and embeddings is not None:
        return diverse_order(by_score, embeddings, threshold)
    return by_score


def diverse_order(items: list[Example], embeddings: dict[str, np.ndarray], threshold: float) -> list[Example]:
    """DEITA's rule: in the given order, take an example unless its cosine similarity to something already
    taken exceeds ``threshold``; the skipped ones follow, so a quota can still be filled from them."""
    taken: list[Example] = []
    skipped: list[Example] = []
    vectors: list[np.ndarray] = []
    for example in items:
        v = embeddings[example.id]
        if vectors and float(np.max(np.stack(vectors) @ v)) > threshold:
            example.meta["diversity_skipped"] = True
            skipped.append(example)
            continue
        taken.append(example)
        vectors.append(v)
    return taken + skipped


def select(
    candidates: list[Example],
    quotas: dict[str, int],
    temperature: float,
    seed: int,
    orderer: Callable[[list[Example]], list[Example]],
    uniform_groups: Collection[str] = (),
) -> list[Example]:
    """Quotas per group (all candidates when ``quotas`` is empty), τ-sampling over domains inside a group
    (uniform over domains in ``uniform_groups``)."""
    groups: dict[str, dict[str, list[Example]]] = defaultdict(lambda: defaultdict(list))
    for example in candidates:
        groups[group_of(example)][example.domain or example.source].append(example)
    selected: list[Example] = []
    for group in sorted(groups):
        if quotas and group not in quotas:
            continue
        by_domain = {d: orderer(items) for d, items in groups[group].items()}
        quota = (
            quotas.get(group, sum(len(v) for v in by_domain.values()))
            if quotas
            else sum(len(v) for v in by_domain.values())
        )
        rng = random.Random(stable_hash([seed, "select", group]))
        tau = math.inf if group in uniform_groups else temperature
        selected.extend(tau_sample(by_domain, quota, tau, rng))
    return selected


def split_dev(
    candidates: list[Example],
    size: int,
    quotas: dict[str, int],
    groups: list[str] | None,
    temperature: float,
    seed: int,
    uniform_groups: Collection[str] = (),
) -> list[Example]:
    """A dev set drawn *before* the train set: ``size`` examples spread over groups like the quotas."""
    if size <= 0:
        return []
    present = {group_of(e) for e in candidates}
    eligible = set(groups or quotas or present) & present
    pool = [e for e in candidates if group_of(e) in eligible]
    if not pool:
        return []
    weights = {g: (quotas.get(g, 0) if quotas else sum(group_of(e) == g for e in pool)) for g in eligible}
    weights = {g: w for g, w in weights.items() if w > 0} or {g: 1 for g in eligible}
    total = sum(weights.values())
    # Largest-remainder apportionment of the dev size over the groups.
    shares = {g: size * w / total for g, w in weights.items()}
    dev_quotas = {g: int(s) for g, s in shares.items()}
    for g in sorted(shares, key=lambda g: (-(shares[g] - dev_quotas[g]), g))[
        : size - sum(dev_quotas.values())
    ]:
        dev_quotas[g] += 1

    def random_order(items: list[Example]) -> list[Example]:
        return order_domain(items, "random", seed)

    return select(pool, dev_quotas, temperature, seed + 1, random_order, uniform_groups)


def dev_size_cap(size: int, candidates: int, max_fraction: float) -> int:
    """The dev size actually drawn: at most ``max_fraction`` of the candidates (rounded down), so the dev
    split never empties the training set."""
    return min(size, math.floor(candidates * max_fraction))
