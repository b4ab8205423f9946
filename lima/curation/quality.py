"""Quality scores for ``order: quality``: response length (Long-Is-More), or an LLM rating through the shared
client (AlpaGasus-style 1–5 accuracy, or LIMA's 1–6 helpfulness scale)."""

from __future__ import annotations

import re
from pathlib import Path

from lima.core.io import stable_hash
from lima.core.record import Example
from lima.curation.config import QualityConfig

SCALES = {
    "alpagasus": (
        1,
        5,
        (
            "Rate how accurate and helpful the response is for the instruction, on a scale from 1 (wrong or "
            "useless) to 5 (fully correct, complete and clear). Reply with the number on the first line, then "
            "one sentence of justification."
        ),
    ),
    "lima": (
        1,
        6,
        (
            "Rate the helpfulness of the response on a 6-point scale: 1 = not helpful or wrong, 2 = barely "
            "helpful, 3 = somewhat helpful, 4 = helpful, 5 = very helpful, 6 = exceptional (expert, complete, "
            "well written). Reply with the number on the first line, then one sentence of justification."
        ),
    ),
}
_NUMBER = re.compile(r"\b([0-9](?:\.[0-9]+)?)\b")


def rating_messages(example: Example, scale: str) -> list[dict[str, str]]:
    instruction = SCALES[scale][2]
    body = f"## Instruction\n{example.prompt}\n\n## Response\n{example.response}\n\n## Task\n{instruction}"
    return [
        {"role": "system", "content": "You are a careful, strict data-quality rater."},
        {"role": "user", "content": body},
    ]


def parse_rating(text: str | None, scale: str) -> float | None:
    """The first number on the scale in the reply (None when there is none)."""
    low, high, _ = SCALES[scale]
    for match in _NUMBER.finditer(text or ""):
        value = float(match.group(1))
        if low <= value <= high:
            return value
    return None


def score_quality(examples: list[Example], config: QualityConfig, cache_path: Path | None) -> dict[str, int]:
    """Set ``meta["quality"]`` on every example; returns counts of unusable ratings by kind."""
    problems = {"rating_error": 0, "rating_unparsed": 0}
    if config.kind == "length":
        for example in examples:
            example.meta["quality"] = len(example.response)
        return problems
    from lima.core.endpoint import EndpointConfig
    from lima.core.llm_client import ChatRequest, LLMClient

    endpoint = config.endpoint or EndpointConfig()
    requests = [
        ChatRequest(
            key=stable_hash(["curate-quality", config.scale, endpoint.model, e.prompt, e.response]),
            messages=rating_messages(e, config.scale),
            temperature=0.0,
            max_tokens=config.max_tokens,
        )
        for e in examples
    ]
    with LLMClient(endpoint, cache_path=cache_path) as client:
        results = client.complete_many(requests, desc="rating")
    for example, result in zip(examples, results, strict=True):
        rating = parse_rating(result.text, config.scale) if result.error is None else None
        if result.error is not None:
            problems["rating_error"] += 1
        elif rating is None:
            problems["rating_unparsed"] += 1
        example.meta["quality"] = rating
    return problems
