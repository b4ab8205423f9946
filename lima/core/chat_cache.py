"""What a chat request is, what comes back, and the cache keyed by what was actually sent.

:func:`request_key` is the one cache key of every request lima sends (judge, grade, calibration, quality
rating, generation over an endpoint): a stable hash of the request as sent and of what else decides the reply.
:class:`ResponseCache` stores finished completions under it. :mod:`lima.core.llm_client` sends the requests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.endpoint import EndpointConfig
from lima.core.errors import LimaError
from lima.core.io import stable_hash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    texts TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model TEXT,
    created REAL NOT NULL,
    logprobs TEXT
)
"""
# Columns added after the first release: an older cache gets them on open (NULL in its old rows).
_ADDED_COLUMNS = {"logprobs": "TEXT"}


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make. ``key`` is the caller's name for it (results carry it back) and says what
    tells two otherwise equal requests apart (a re-ask, a sample); the cache key is :func:`request_key`."""

    key: str
    messages: list[dict[str, str]]
    temperature: float = 0.0
    max_tokens: int = 512
    n: int = 1
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    extra_body: dict[str, Any] | None = None  # server-specific fields, e.g. vLLM's repetition_penalty
    response_format: dict[str, Any] | None = None  # OpenAI json_schema, or llama.cpp json_object + schema
    top_logprobs: int | None = None  # set: ask for logprobs with this many alternatives per token
    # What the request is about, for a listing of requests (``--dry-run``): e.g. {"prompt_id", "order"}.
    # Never sent, and not part of the cache key.
    about: dict[str, Any] | None = field(default=None, compare=False)


# Bump when what goes into request_key changes: older rows then never match and are re-requested.
REQUEST_KEY_VERSION = 2


def request_key(endpoint: EndpointConfig, request: ChatRequest) -> str:
    """The cache key of every request anyone sends (judge, grade, calibration, quality rating, generation):
    a stable hash of the request as sent — model, base_url, messages, every sampling field, ``extra_body``
    (a GBNF grammar's text travels there), ``response_format``, ``top_logprobs`` — plus what else decides the
    reply: the embedded server's model file and context size, and the caller's ``key``. Two requests share a
    cached reply only when the server would have been asked the same thing."""
    server: dict[str, Any] = {"base_url": endpoint.base_url, "model": endpoint.model}
    if endpoint.is_embedded:
        server.update(embedded_model=endpoint.embedded_model, embedded_n_ctx=endpoint.embedded_n_ctx)
    sent = dataclasses.asdict(request)
    del sent["about"]  # a label of the caller's, not part of what is sent
    return stable_hash({"version": REQUEST_KEY_VERSION, "server": server, "request": sent})


def request_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for ``request``: what goes over the wire
    (``extra_body`` is merged into the JSON body by the OpenAI client)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    if request.n != 1:
        body["n"] = request.n
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = request.stop
    if request.seed is not None:
        body["seed"] = request.seed
    if request.extra_body:
        body["extra_body"] = request.extra_body
    if request.response_format is not None:
        body["response_format"] = request.response_format
    if request.top_logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    return body


@dataclass
class ChatResult:
    """The outcome of one request: ``text`` (first choice) or ``error``, never both."""

    key: str
    text: str | None
    error: str | None = None
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    texts: list[str] = field(default_factory=list)
    # First choice, per generated token: {"token", "logprob", "top_logprobs": [{"token", "logprob"}]}.
    logprobs: list[dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def count_cached(path: Path) -> int | None:
    """Replies stored in the cache file at ``path``, read-only (None: no cache there, or not readable now).
    For progress lines; it never creates, migrates or locks the file."""
    if not Path(path).is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as db:
            return int(db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
    except sqlite3.Error:
        return None


class ResponseCache:
    """SQLite store of finished completions; safe against kill -9 (WAL, commit per result)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(_SCHEMA)
            have = {row[1] for row in self.db.execute("PRAGMA table_info(completions)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE completions ADD COLUMN {name} {kind}")
        except sqlite3.DatabaseError as exc:
            raise LimaError(
                f"{path}: not a usable cache database ({exc}); delete it to start afresh"
            ) from None

    def get_many(self, keys: list[str]) -> dict[str, tuple[list[str], int, int, list[dict] | None]]:
        found: dict[str, tuple[list[str], int, int, list[dict] | None]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT key, texts, prompt_tokens, completion_tokens, logprobs FROM completions "
                f"WHERE key IN ({marks})",
                chunk,
            )
            for key, texts, prompt_tokens, completion_tokens, logprobs in rows:
                found[key] = (
                    json.loads(texts),
                    prompt_tokens,
                    completion_tokens,
                    json.loads(logprobs) if logprobs else None,
                )
        return found

    def put(
        self,
        key: str,
        texts: list[str],
        prompt_tokens: int,
        completion_tokens: int,
        model: str,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO completions "
            "(key, texts, prompt_tokens, completion_tokens, model, created, logprobs) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                json.dumps(texts, ensure_ascii=False),
                prompt_tokens,
                completion_tokens,
                model,
                time.time(),
                json.dumps(logprobs, ensure_ascii=False) if logprobs is not None else None,
            ),
        )

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self.db.close()
