"""``--dry-run``: every request an annotator (judge, grader) would send, written down instead of sent.

:class:`DryRunClient` stands where an :class:`lima.core.llm_client.LLMClient` would: the engines build their
requests exactly as for a real run and hand them to it; it records each one and answers every request with an
error, so an engine treats it as a failed request (done: no re-ask). Nothing is contacted, no server is started
and no API key is needed. ``requests.jsonl`` then holds one line per request: what it is about (``prompt_id``,
``order`` or ``sample``), the exact body that would go over the wire (``messages`` and every sampling field) and
the cache key it would be stored under.

Token counts are an estimate without a tokenizer (:data:`CHARS_PER_TOKEN`); the completion side is an upper
bound (``max_tokens`` per request). Re-asks of unparseable replies are not in the count: a real run may add up
to ``parse_retries`` more rounds for the replies that do not parse.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.chat_cache import ChatRequest, ChatResult, request_body, request_key
from lima.core.endpoint import EndpointConfig
from lima.core.io import atomic_open
from lima.core.llm_client import ClientStats

NOT_SENT = "dry run: not sent"
CHARS_PER_TOKEN = 4  # English prose in GPT-style BPE tokenizers; a rough, tokenizer-free estimate
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators per chat message, as OpenAI's chat format counts them


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of a chat request, estimated from characters (no tokenizer)."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * len(messages)


@dataclass
class _Recorded:
    endpoint: EndpointConfig
    request: ChatRequest


class DryRunClient:
    """Records requests instead of sending them; ``write`` lists them, ``totals`` counts them."""

    def __init__(self, endpoint: EndpointConfig, recorded: list[_Recorded] | None = None) -> None:
        self.endpoint = endpoint
        self.cache = None
        self.progress = False
        self.stats = ClientStats()
        self.recorded: list[_Recorded] = recorded if recorded is not None else []

    def __enter__(self) -> DryRunClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def sibling(self, endpoint: EndpointConfig) -> DryRunClient:
        """A panel member's client: the same list of requests."""
        return DryRunClient(endpoint, self.recorded)

    def complete(self, request: ChatRequest) -> ChatResult:
        return self.complete_many([request])[0]

    def complete_many(
        self, requests: list[ChatRequest], desc: str = "", progress: bool = True
    ) -> list[ChatResult]:
        self.recorded.extend(_Recorded(self.endpoint, r) for r in requests)
        return [ChatResult(r.key, None, NOT_SENT) for r in requests]

    def lines(self) -> list[dict[str, Any]]:
        """One dict per request: its ``about`` fields, then the body as sent, the endpoint and the cache key."""
        rows = []
        for entry in self.recorded:
            body = request_body(entry.endpoint.model, entry.request)
            rows.append(
                {
                    **(entry.request.about or {}),
                    **body,
                    "base_url": entry.endpoint.base_url,
                    "prompt_tokens_estimate": estimate_tokens(entry.request.messages),
                    "cache_key": request_key(entry.endpoint, entry.request),
                }
            )
        return rows

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as fh:
            for row in self.lines():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path

    def totals(self) -> dict[str, Any]:
        """Requests, estimated prompt tokens, the completion-token ceiling and, where the endpoint configs
        state prices, the cost (the prompt side estimated, the completion side at most)."""
        prompt_tokens = completion_ceiling = 0
        prompt_cost = completion_cost = 0.0
        priced = False
        for entry in self.recorded:
            tokens = estimate_tokens(entry.request.messages)
            ceiling = entry.request.max_tokens * entry.request.n
            prompt_tokens += tokens
            completion_ceiling += ceiling
            endpoint = entry.endpoint
            priced |= bool(
                endpoint.price_per_million_input_tokens or endpoint.price_per_million_output_tokens
            )
            prompt_cost += tokens * endpoint.price_per_million_input_tokens / 1e6
            completion_cost += ceiling * endpoint.price_per_million_output_tokens / 1e6
        return {
            "requests": len(self.recorded),
            "prompt_tokens_estimate": prompt_tokens,
            "completion_tokens_max": completion_ceiling,
            "cost_usd_prompt_estimate": round(prompt_cost, 6) if priced else None,
            "cost_usd_completion_max": round(completion_cost, 6) if priced else None,
        }


def describe(totals: dict[str, Any], path: Path, parse_retries: int = 0) -> str:
    """What ``--dry-run`` prints: the count, the tokens and the cost (or how to get one)."""
    lines = [
        f"dry run: {totals['requests']} requests written to {path} (nothing was sent)",
        f"prompt tokens: about {totals['prompt_tokens_estimate']:,} "
        f"({CHARS_PER_TOKEN} characters a token, no tokenizer); "
        f"completion tokens: at most {totals['completion_tokens_max']:,} (max_tokens per request)",
    ]
    if totals["cost_usd_prompt_estimate"] is None:
        lines.append(
            "cost: no prices in the endpoint config (set endpoint.price_per_million_input_tokens and "
            "endpoint.price_per_million_output_tokens to see one)"
        )
    else:
        prompt, completion = totals["cost_usd_prompt_estimate"], totals["cost_usd_completion_max"]
        lines.append(
            f"cost: about ${prompt:.4f} for the prompts + at most ${completion:.4f} for the completions "
            f"= at most ${prompt + completion:.4f}"
        )
    if parse_retries:
        lines.append(
            f"re-asks not counted: replies that do not parse are asked again up to {parse_retries} more times"
        )
    return "\n".join(lines)
