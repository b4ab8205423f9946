"""The re-ask loop every LLM annotator shares (judge, grader): send, parse, re-ask what did not parse.

Layer: engines (their shared base). Imports only ``lima.core``."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from lima.core.llm_client import ChatRequest, ChatResult, LLMClient


def ask_until_parsed(
    client: LLMClient,
    slots: Sequence[Hashable],
    request: Callable[[Any, int], ChatRequest],
    handle: Callable[[Any, ChatResult, int], bool],
    retries: int,
    desc: str,
) -> None:
    """Send ``request(slot, attempt)`` for every slot; ``handle(slot, result, attempt)`` records the reply and
    says whether the slot is done. A slot whose reply did not parse (``handle`` returned False) is asked again,
    at most ``retries`` times. A failed request is done: the client has already retried it."""
    pending = list(slots)
    for attempt in range(retries + 1):
        if not pending:
            break
        label = desc if attempt == 0 else f"{desc} (re-ask {attempt})"
        results = client.complete_many([request(slot, attempt) for slot in pending], desc=label)
        pending = [
            slot for slot, result in zip(pending, results, strict=True) if not handle(slot, result, attempt)
        ]
