"""Benchmark protocols: what a benchmark changes in generation and judging beyond its files, chosen from the
detected format of the inputs by a registry (never by a template's file name).

A :class:`Protocol` bundles the strategies the engines take:

- ``generate(config, out_path, model, prompts, limit)``: the generation plan (MT-Bench: turn 2 continues the
  model's own turn-1 answer, one pass per turn); None: one pass over the prompts;
- ``pair_meta(record_a, record_b)``: what the benchmark's prompt needs of a pair (MT-Bench: each model's
  conversation);
- ``pair_prompt(judge_config, items)``: the judge's :class:`lima.eval.judging.PairPrompt` for this benchmark's
  pair items, or None for the config's template (MT-Bench: FastChat's pair-v2 family, when the judge uses its
  pair-v2 template: reference-guided prompts by category from the config's ``questions:`` and
  ``references:``, multi-turn prompts for turn 2). It raises a LimaError before any request when the items
  cannot be shown as the benchmark shows them (a missing question, reference or history);
- ``grade_prompt(grade_config, records)``: the grader's messages for each generation record, or None for the
  config's template (MT-Bench: FastChat's single-answer prompts for ``scale: mt_bench``).

Add a benchmark (issue #20: AlpacaEval, Arena-Hard and MT-Bench run exactly as their own code) by writing its
module here and registering it in ``REGISTRY``.

Layer: protocols. Imports engines, adapters, metrics and the bottom layer; never a runner or a command.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.eval.formats import detect


@dataclass(frozen=True)
class Protocol:
    name: str
    generate: Callable[..., Path] | None = None
    pair_prompt: Callable[[Any, Sequence[Any]], Any] | None = None
    pair_meta: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    # lima generation records made under this protocol (ids it wrote), for files that name no format
    owns_records: Callable[[Sequence[dict[str, Any]]], bool] | None = None
    grade_prompt: Callable[[Any, Sequence[dict[str, Any]]], Any] | None = None


def _registry() -> dict[str, Protocol]:
    from lima.eval.protocols import alpaca_eval, arena_hard, mt_bench

    return {p.name: p for p in (alpaca_eval.PROTOCOL, mt_bench.PROTOCOL, arena_hard.PROTOCOL)}


REGISTRY: dict[str, Protocol] = {}


def registry() -> dict[str, Protocol]:
    """``{format name: protocol}`` (filled on first use)."""
    if not REGISTRY:
        REGISTRY.update(_registry())
    return REGISTRY


def _detected(path: str | os.PathLike, kinds: tuple[str, ...]) -> str | None:
    path = Path(path)
    if path.suffix not in (".json", ".jsonl") or not path.is_file():
        return None
    found = detect(path)
    return found[0] if found is not None and found[1] in kinds else None


def protocol_for_prompts(path: str | os.PathLike) -> Protocol | None:
    """The protocol of a benchmark's prompt file (MT-Bench ``question.jsonl``, …), else None."""
    name = _detected(path, ("prompts",))
    return registry().get(name) if name else None


def protocol_for_pairs(
    paths: Sequence[str | os.PathLike], records: Sequence[Sequence[dict[str, Any]]], config: Any = None
) -> Protocol | None:
    """The protocol of the answers being judged: the judge config's Arena-Hard version when it names one,
    else a benchmark's answer file among ``paths``, else lima generation records written under a protocol
    (e.g. MT-Bench's ``81:turn2`` turns), else None."""
    if getattr(config, "arena_hard_version", None) is not None:
        from lima.eval.protocols import arena_hard

        return arena_hard.protocol_for(config)
    for path in paths:
        name = _detected(path, ("answers",))
        if name in registry():
            return registry()[name]
    for protocol in registry().values():
        if protocol.owns_records is not None and any(protocol.owns_records(r) for r in records):
            return protocol
    return None
