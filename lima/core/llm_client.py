"""The one OpenAI-compatible chat client shared by evaluation (judge, grade) and curation (LLM scoring).

    with LLMClient(endpoint, cache_path=out / "cache.sqlite") as client:
        results = client.complete_many([ChatRequest(key, messages)], desc="judging")

- ``openai.AsyncOpenAI`` inside, at most ``endpoint.concurrency`` requests in flight;
- retries with exponential backoff and full jitter on 429, 5xx, timeouts and connection errors;
  401/403/404 (bad key, bad model) stop the run at once with one :class:`LimaError` line;
- a persistent SQLite cache (WAL, one commit per result) keyed by the caller's ``key``: a rerun after
  ``kill -9`` sends nothing for an item that finished. Failed items are not cached, so a rerun retries them;
- ``base_url: embedded`` starts the local llama.cpp judge server on first need and stops it on exit;
- the API key is read from ``os.environ[endpoint.api_key_env]`` only and scrubbed from every error text.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.endpoint import EndpointConfig
from lima.core.errors import LimaError
from lima.core.manifest import redact_text

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    texts TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model TEXT,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make. ``key`` identifies it in the cache: equal keys mean equal requests."""

    key: str
    messages: list[dict[str, str]]
    temperature: float = 0.0
    max_tokens: int = 512
    n: int = 1
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    extra_body: dict[str, Any] | None = None  # server-specific fields, e.g. vLLM's repetition_penalty


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

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ClientStats:
    """What a client did: HTTP requests (retries included), cache hits, tokens and cost."""

    requests: int = 0
    succeeded: int = 0
    retries: int = 0
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "cost_usd": round(self.cost_usd, 6)}


class _Fatal(Exception):
    """A failure that no retry can fix and that every other request would hit too."""


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
        except sqlite3.DatabaseError as exc:
            raise LimaError(
                f"{path}: not a usable cache database ({exc}); delete it to start afresh"
            ) from None

    def get_many(self, keys: list[str]) -> dict[str, tuple[list[str], int, int]]:
        found: dict[str, tuple[list[str], int, int]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT key, texts, prompt_tokens, completion_tokens FROM completions WHERE key IN ({marks})",
                chunk,
            )
            for key, texts, prompt_tokens, completion_tokens in rows:
                found[key] = (json.loads(texts), prompt_tokens, completion_tokens)
        return found

    def put(self, key: str, texts: list[str], prompt_tokens: int, completion_tokens: int, model: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                json.dumps(texts, ensure_ascii=False),
                prompt_tokens,
                completion_tokens,
                model,
                time.time(),
            ),
        )

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self.db.close()


def api_key_for(endpoint: EndpointConfig) -> str:
    """The key from the environment (never from a file); a placeholder for endpoints without one."""
    if endpoint.is_embedded or endpoint.api_key_env is None:
        return "none"
    value = os.environ.get(endpoint.api_key_env, "")
    if not value:
        raise LimaError(
            f"endpoint {endpoint.base_url} needs an API key: set the environment variable "
            f"${endpoint.api_key_env} (or set api_key_env: null for a server without keys)"
        )
    return value


class LLMClient:
    """Cached, concurrent, retrying chat completions against one endpoint; a context manager."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        cache_path: Path | None = None,
        *,
        progress: bool = True,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.cache = ResponseCache(Path(cache_path)) if cache_path is not None else None
        self.progress = progress
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.stats = ClientStats()
        self._api_key = api_key_for(endpoint)
        self._server: Any = None  # JudgeServer, started on first uncached request
        self._base_url = None if endpoint.is_embedded else endpoint.base_url

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    @property
    def base_url(self) -> str:
        """The URL requests go to (starts the embedded server if that is the endpoint)."""
        if self._base_url is None:
            from lima.core.judge_server import JudgeServer

            self._server = JudgeServer(
                model=self.endpoint.embedded_model,
                alias=self.endpoint.model,
                n_ctx=self.endpoint.embedded_n_ctx,
            ).start()
            self._base_url = self._server.base_url
        return self._base_url

    # -- requests --------------------------------------------------------------------------------
    def complete(self, request: ChatRequest) -> ChatResult:
        return self.complete_many([request], desc="", progress=False)[0]

    def complete_many(
        self,
        requests: list[ChatRequest],
        desc: str = "requests",
        progress: bool | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
    ) -> list[ChatResult]:
        """Results in the order of ``requests``. Cached keys are answered without a request.

        ``on_result`` is called as each result arrives (cached ones first), e.g. to append to a file.
        Raises :class:`LimaError` for failures that concern every request (bad key, unknown model,
        endpoint unreachable after all retries); results finished before that are already cached.
        """
        results: dict[str, ChatResult] = {}
        cached = self.cache.get_many([r.key for r in requests]) if self.cache is not None else {}
        todo: dict[str, ChatRequest] = {}
        for request in requests:
            if request.key in results:
                continue
            hit = cached.get(request.key)
            if hit is None:
                todo.setdefault(request.key, request)
                continue
            texts, prompt_tokens, completion_tokens = hit
            result = ChatResult(
                request.key, texts[0] if texts else "", None, True, prompt_tokens, completion_tokens, texts
            )
            results[request.key] = result
            self.stats.cache_hits += 1
            if on_result:
                on_result(result)
        if todo:
            show = self.progress if progress is None else progress
            for result in asyncio.run(self._run_all(list(todo.values()), desc, show, on_result)):
                results[result.key] = result
        return [results[r.key] for r in requests]

    async def _run_all(
        self, todo: list[ChatRequest], desc: str, show: bool, on_result: Callable[[ChatResult], None] | None
    ) -> list[ChatResult]:
        import openai
        from tqdm.auto import tqdm

        client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, timeout=self.endpoint.timeout_s, max_retries=0
        )
        semaphore = asyncio.Semaphore(self.endpoint.concurrency)
        bar = tqdm(total=len(todo), desc=desc, unit="req", disable=not show, leave=False)
        done: list[ChatResult] = []

        async def one(request: ChatRequest) -> None:
            async with semaphore:
                result = await self._request(client, request)
            done.append(result)
            bar.update(1)
            if on_result:
                on_result(result)

        tasks = [asyncio.create_task(one(r)) for r in todo]
        try:
            await asyncio.gather(*tasks)
        except _Fatal as exc:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise LimaError(str(exc)) from None
        finally:
            bar.close()
            await client.close()
        return done

    async def _request(self, client: Any, request: ChatRequest) -> ChatResult:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.n != 1:
            kwargs["n"] = request.n
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.stop:
            kwargs["stop"] = request.stop
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.extra_body:
            kwargs["extra_body"] = request.extra_body
        where = f"{self.endpoint.base_url} (model {self.endpoint.model!r})"
        attempt = 0
        while True:
            self.stats.requests += 1
            try:
                response = await client.chat.completions.create(**kwargs)
                break
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise _Fatal(
                    f"{where} refused the API key (HTTP {exc.status_code}): check ${self.endpoint.api_key_env}"
                ) from None
            except openai.NotFoundError as exc:
                raise _Fatal(
                    f"{where} answered 404: wrong model name or base_url ({_brief(exc)}); "
                    "fix endpoint.model / endpoint.base_url"
                ) from None
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as exc:
                # APITimeoutError is an APIConnectionError; any 5xx is an InternalServerError.
                if attempt >= self.endpoint.max_retries:
                    # Refused connections concern every request; a timeout may be this request's own length.
                    if isinstance(exc, openai.APIConnectionError) and not isinstance(
                        exc, openai.APITimeoutError
                    ):
                        raise _Fatal(
                            f"{where} unreachable after {attempt + 1} attempts ({_brief(exc)}); "
                            "is the server running? rerun to resume: finished items are cached"
                        ) from None
                    self.stats.errors += 1
                    return ChatResult(
                        request.key, None, f"gave up after {attempt + 1} attempts: {_brief(exc)}"
                    )
                delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
                delay = _retry_after(exc) or random.uniform(0, delay)  # full jitter
                attempt += 1
                self.stats.retries += 1
                await asyncio.sleep(delay)
            except openai.APIStatusError as exc:  # 400, 422, ...: this request is wrong, others may be fine
                self.stats.errors += 1
                return ChatResult(request.key, None, f"HTTP {exc.status_code}: {_brief(exc)}")

        texts = [(choice.message.content or "") for choice in response.choices]
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        self.stats.succeeded += 1
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        self.stats.cost_usd += (
            prompt_tokens * self.endpoint.price_per_million_input_tokens
            + completion_tokens * self.endpoint.price_per_million_output_tokens
        ) / 1e6
        if self.cache is not None:
            self.cache.put(request.key, texts, prompt_tokens, completion_tokens, response.model or "")
        return ChatResult(
            request.key, texts[0] if texts else "", None, False, prompt_tokens, completion_tokens, texts
        )


def _brief(exc: Exception) -> str:
    """One line of an exception's text, secrets scrubbed."""
    text = " ".join(str(exc).split())
    return redact_text(text[:300])


def _retry_after(exc: Exception) -> float | None:
    """Seconds a 429/503 asks us to wait (Retry-After header), capped at one minute."""
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return min(60.0, float(header)) if header else None
    except ValueError:
        return None
