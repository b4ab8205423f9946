"""The one OpenAI-compatible chat client shared by evaluation (judge, grade) and curation (LLM scoring).

    with LLMClient(endpoint, cache_path=out / "cache.sqlite") as client:
        results = client.complete_many([ChatRequest(key, messages)], desc="judging")

- ``openai.AsyncOpenAI`` inside, at most ``endpoint.concurrency`` requests in flight;
- retries with exponential backoff and full jitter on 429, 5xx, timeouts and connection errors;
  401/403/404 (bad key, bad model) stop the run at once with one :class:`LimaError` line;
- a persistent SQLite cache (WAL, one commit per result) keyed by :func:`request_key`, a hash of the request
  as sent (and the caller's ``key``): a rerun after ``kill -9`` sends nothing for an item that finished, and a
  changed grammar, seed or server setting is asked anew. Failed items are not cached, so a rerun retries them;
- ``base_url: embedded`` starts the local llama.cpp judge server on first need and stops it on exit; a server
  that dies is reported as a crash (signal, log tail), restarted once, and the run goes on from the cache;
- the API key is read from ``os.environ[endpoint.api_key_env]`` only and scrubbed from every error text.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.chat_cache import ChatRequest, ChatResult, ResponseCache, request_body, request_key
from lima.core.endpoint import EndpointConfig
from lima.core.errors import LimaError
from lima.core.manifest import redact_text


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
    server_restarts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "cost_usd": round(self.cost_usd, 6)}


class _Fatal(Exception):
    """A failure that no retry can fix and that every other request would hit too."""


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
        max_server_restarts: int = 1,
    ) -> None:
        self.endpoint = endpoint
        self.cache = ResponseCache(Path(cache_path)) if cache_path is not None else None
        self.progress = progress
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.stats = ClientStats()
        self._api_key = api_key_for(endpoint)
        self._server: Any = None  # JudgeServer, started on first uncached request
        self.max_server_restarts = max_server_restarts
        self._restart_lock: asyncio.Lock | None = None
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

    def sibling(self, endpoint: EndpointConfig) -> LLMClient:
        """A client for another endpoint sharing this one's cache file and progress setting (a panel
        member's judge); the caller closes it."""
        cache = self.cache.path if self.cache is not None else None
        return LLMClient(endpoint, cache, progress=self.progress)

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
        keys = [request_key(self.endpoint, r) for r in requests]
        results: dict[str, ChatResult] = {}  # by cache key
        cached = self.cache.get_many(keys) if self.cache is not None else {}
        todo: dict[str, ChatRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key in results:
                continue
            hit = cached.get(key)
            if hit is None or (request.top_logprobs is not None and hit[3] is None):
                todo.setdefault(key, request)  # (a row cached without the logprobs asked for)
                continue
            texts, prompt_tokens, completion_tokens, logprobs = hit
            result = ChatResult(
                request.key,
                texts[0] if texts else "",
                None,
                True,
                prompt_tokens,
                completion_tokens,
                texts,
                logprobs if request.top_logprobs is not None else None,
            )
            results[key] = result
            self.stats.cache_hits += 1
            if on_result:
                on_result(result)
        if todo:
            _check_grammars(todo.values())
            show = self.progress if progress is None else progress
            for key, result in asyncio.run(self._run_all(todo, desc, show, on_result)):
                results[key] = result
        return [results[key] for key in keys]

    async def _run_all(
        self,
        todo: dict[str, ChatRequest],
        desc: str,
        show: bool,
        on_result: Callable[[ChatResult], None] | None,
    ) -> list[tuple[str, ChatResult]]:
        import openai
        from tqdm.auto import tqdm

        client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, timeout=self.endpoint.timeout_s, max_retries=0
        )
        semaphore = asyncio.Semaphore(self.endpoint.concurrency)
        self._restart_lock = asyncio.Lock()
        bar = tqdm(total=len(todo), desc=desc, unit="req", disable=not show, leave=False)
        done: list[tuple[str, ChatResult]] = []

        async def one(key: str, request: ChatRequest) -> None:
            async with semaphore:
                result = await self._request(client, key, request)
            done.append((key, result))
            bar.update(1)
            if on_result:
                on_result(result)

        tasks = [asyncio.create_task(one(key, r)) for key, r in todo.items()]
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

    async def _request(self, client: Any, key: str, request: ChatRequest) -> ChatResult:
        import openai

        kwargs = request_body(self.endpoint.model, request)
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
                if isinstance(exc, openai.APIConnectionError) and await self._server_died():
                    await self._restart_server()
                    continue  # the same request again, on the new server; not counted as an attempt
                if attempt >= self.endpoint.max_retries:
                    # Refused connections concern every request; a timeout may be this request's own length.
                    if isinstance(exc, openai.APIConnectionError) and not isinstance(
                        exc, openai.APITimeoutError
                    ):
                        raise _Fatal(self._unreachable_message(where, attempt + 1, exc)) from None
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
        logprobs = _token_logprobs(response.choices[0]) if request.top_logprobs is not None else None
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
            self.cache.put(key, texts, prompt_tokens, completion_tokens, response.model or "", logprobs)
        first = texts[0] if texts else ""
        return ChatResult(request.key, first, None, False, prompt_tokens, completion_tokens, texts, logprobs)

    # -- the embedded server's crashes ---------------------------------------------------------------
    async def _server_died(self) -> bool:
        """Whether the connection failed because the embedded server we started is dead."""
        if self._server is None:
            return False
        if self._server.death() is None:
            await asyncio.sleep(0.2)  # a process killed mid-request may not be reaped yet
        return self._server.death() is not None

    async def _restart_server(self) -> None:
        """Restart a dead embedded server once per run; a second death stops the run with the crash."""
        assert self._restart_lock is not None
        async with self._restart_lock:
            death = self._server.death()
            if death is None:  # another request restarted it while this one waited
                return
            if self.stats.server_restarts >= self.max_server_restarts:
                raise _Fatal(
                    f"the embedded judge server (pid {self._server.pid}) crashed again, {death}\n"
                    "Finished items are cached: rerun the same command to resume. If it keeps crashing, "
                    "`lima doctor` checks the server, and `lima serve-judge` runs it in the foreground."
                )
            self.stats.server_restarts += 1
            print(
                f"warning: the embedded judge server (pid {self._server.pid}) crashed, {death}\n"
                "restarting it and continuing from the cache",
                file=sys.stderr,
            )
            await asyncio.to_thread(self._server.restart)

    def _unreachable_message(self, where: str, attempts: int, exc: Exception) -> str:
        if self._server is not None:  # we started it and it is alive: not a network problem
            return (
                f"the embedded judge server (pid {self._server.pid}) is running but did not answer after "
                f"{attempts} attempts ({_brief(exc)}); rerun to resume: finished items are cached"
            )
        return (
            f"{where} unreachable after {attempts} attempts ({_brief(exc)}); "
            "is the server running? rerun to resume: finished items are cached"
        )


def _check_grammars(requests: Any) -> None:
    """An invalid GBNF grammar crashes a llama.cpp server: check each distinct one before anything is sent."""
    grammars = {r.extra_body.get("grammar") for r in requests if r.extra_body}
    grammars.discard(None)
    if grammars:
        from lima.core.gbnf import validate_grammar

        for grammar in sorted(grammars):
            if not isinstance(grammar, str):
                raise LimaError("extra_body.grammar: a GBNF grammar must be a string")
            validate_grammar(grammar, "extra_body.grammar")


def _token_logprobs(choice: Any) -> list[dict[str, Any]]:
    """A choice's ``logprobs.content`` as plain dicts (token, logprob, top_logprobs); [] when absent."""
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    return [
        {
            "token": entry.token,
            "logprob": entry.logprob,
            "top_logprobs": [{"token": t.token, "logprob": t.logprob} for t in (entry.top_logprobs or [])],
        }
        for entry in content
    ]


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
