"""Offline fails fast: before transformers retries the Hugging Face Hub for most of a minute, decide in a few
seconds whether a hub id can load at all.

- in the local Hugging Face cache: load it from there (``local_files_only`` when offline or unreachable);
- ``HF_HUB_OFFLINE`` set, or the Hub unreachable within ``PROBE_TIMEOUT_S``: one line, at once.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlparse

from lima.core.errors import ModelResolutionError

PROBE_TIMEOUT_S = 3.0
_reachable: dict[str, bool] = {}


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub opens within ``timeout`` seconds (name lookup included)."""
    host, port = _endpoint()
    if host in _reachable:
        return _reachable[host]
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # a hung name lookup cannot hold us past timeout
    thread.start()
    thread.join(timeout)
    _reachable[host] = bool(result and result[0])
    return _reachable[host]


def _cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:
        return False


def hub_access(spec: str, fallback: str) -> dict[str, Any]:
    """Extra ``from_pretrained`` kwargs for hub id ``spec``, or a one-line error (suggesting ``fallback``, the
    embedded model) when it cannot load."""
    offline = hub_offline()
    if _cached(spec):
        return {"local_files_only": True} if offline or not hub_reachable() else {}
    if offline:
        reason = "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
    elif not hub_reachable():
        host, _ = _endpoint()
        reason = f"no network: {host} cannot be reached, and it is not in the local Hugging Face cache"
    else:
        return {}
    raise ModelResolutionError(
        f"model {spec!r} could not be loaded from the Hugging Face Hub ({reason}); "
        f"use a local path or {fallback}"
    )
