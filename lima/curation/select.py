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


def apportion(size: int, weights: dict[str, float], capacity: dict[str, int]) -> dict[str, int]:
    """``size`` split over groups in proportion to ``weights``, none above its ``capacity``: a capped group's
    excess goes to the others in the same proportion, integers by largest remainder."""
    active = {g: w for g, w in weights.items() if w > 0 and capacity.get(g, 0) > 0}
    fixed: dict[str, int] = {}
    left = min(size, sum(capacity.get(g, 0) for g in active))
    while active:
        total = sum(active.values())
        over = [g for g, w in active.items() if left * w / total >= capacity[g]]
        if not over:
            break
        for g in over:
            fixed[g] = capacity[g]
            left -= capacity[g]
            del active[g]
    shares = {g: left * w / sum(active.values()) for g, w in active.items()} if active else {}
    result = {**fixed, **{g: int(s) for g, s in shares.items()}}
    order = sorted(shares, key=lambda g: (-(shares[g] - result[g]), g))
    for g in order[: left - sum(result[g] for g in shares)]:
        result[g] += 1
    return {g: n for g, n in result.items() if n > 0}


def dev_plan(
    candidates: list[Example],
    size: int,
    quotas: dict[str, int],
    groups: list[str] | None,
    from_short_groups: bool = False,
) -> dict[str, int]:
    """Dev examples per group: ``size`` spread like the quotas (like the candidates without quotas). A group
    gives dev only what it has beyond its training quota, so dev never starves a group of its quota, unless
    ``from_short_groups`` (then any candidate may go to dev)."""
    if size <= 0:
        return {}
    present: dict[str, int] = defaultdict(int)
    for example in candidates:
        present[group_of(example)] += 1
    eligible = set(groups or quotas or present) & set(present)
    weights = {g: float(quotas.get(g, 0) if quotas else present[g]) for g in eligible}
    if not any(weights.values()):
        weights = {g: 1.0 for g in eligible}
    capacity = {
        g: present[g] if from_short_groups or not quotas else max(0, present[g] - quotas.get(g, 0))
        for g in eligible
    }
    return apportion(size, weights, capacity)


def split_dev(
    candidates: list[Example],
    plan: dict[str, int],
    temperature: float,
    seed: int,
    uniform_groups: Collection[str] = (),
) -> list[Example]:
    """The dev set, drawn *before* the train set: ``plan[group]`` random examples of each group."""
    pool = [e for e in candidates if group_of(e) in plan]
    if not pool:
        return []

    def random_order(items: list[Example]) -> list[Example]:
        return order_domain(items, "random", seed)

    return select(pool, plan, temperature, seed + 1, random_order, uniform_groups)


def scale_quotas(candidates: list[Example], quotas: dict[str, int]) -> dict[str, int]:
    """The quotas times one factor (≤ 1) that the scarcest group with candidates can fill, so the train set keeps
    the proportions the quotas ask for; groups without candidates keep their quota (and are reported short)."""
    have: dict[str, int] = defaultdict(int)
    for example in candidates:
        have[group_of(example)] += 1
    factor = min([1.0, *(have[g] / q for g, q in quotas.items() if q > 0 and have[g] > 0)])
    return {g: math.floor(q * factor) if have[g] else q for g, q in quotas.items()}


def dev_size_cap(size: int, candidates: int, max_fraction: float) -> int:
    """The dev size actually drawn: at most ``max_fraction`` of the candidates (rounded down), so the dev
    split never empties the training set."""
    return min(size, math.floor(candidates * max_fraction))
