"""A small local OpenAI-compatible HTTP server for client tests and the throughput bench.

It answers ``POST /v1/chat/completions`` from a script of HTTP statuses (then 200s), with an optional fixed
latency and a bounded number of parallel slots, and records every request body it saw.

Like OpenAI's API it also answers ``logprobs`` / ``top_logprobs`` (``choices[].logprobs.content``: one entry per
whitespace token, the first token's alternatives from ``first_token_logprobs(body)``) and checks
``response_format`` the way each server ``flavour`` does: ``openai`` takes ``json_object`` (no schema) and
``json_schema`` (name + schema; strict schemas need every property required, ``additionalProperties: false``
and no ``maxLength``); ``vllm`` takes ``json_schema`` without those limits; ``llamacpp`` (llama-cpp-python
0.3.x) takes ``json_object`` with an optional ``schema`` and answers ``json_schema`` with HTTP 500.
The ``reply`` callable sees the request body, so a test's judge can answer in the format it was asked for.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class FakeOpenAI:
    def __init__(
        self,
        statuses: list[int] | None = None,
        latency_s: float = 0.0,
        slots: int = 64,
        reply: Callable[[dict[str, Any]], str] | None = None,
        first_token_logprobs: Callable[[dict[str, Any]], dict[str, float]] | None = None,
        flavour: str = "openai",
    ) -> None:
        self.first_token_logprobs = first_token_logprobs or (lambda body: {})
        self.flavour = flavour
        self.statuses = deque(statuses or [])
        self.latency_s = latency_s
        self.reply = reply or (lambda body: "[[A]]")
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(slots)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = (
                True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
            )

            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    self.close_connection = True

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    status = fake.statuses.popleft() if fake.statuses else 200
                with fake._slots:
                    with fake._lock:
                        fake.in_flight += 1
                        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    if fake.latency_s:
                        time.sleep(fake.latency_s)
                    with fake._lock:
                        fake.in_flight -= 1
                if status != 200:
                    message = {
                        401: "Incorrect API key provided: " + self.headers.get("Authorization", "")
                    }.get(status, f"status {status}")
                    headers = {"Retry-After": "0"} if status == 429 else None
                    self._send(
                        status, {"error": {"message": message, "type": "error", "code": status}}, headers
                    )
                    return
                problem = fake.request_problem(body)
                if problem is not None:
                    code = 500 if fake.flavour == "llamacpp" else 400
                    self._send(
                        code, {"error": {"message": problem, "type": "invalid_request_error", "code": code}}
                    )
                    return
                text = fake.reply(body)
                if body.get("max_tokens") is not None:  # a one-token verdict is one token
                    text = " ".join(text.split(" ")[: int(body["max_tokens"])])
                logprobs = fake.logprobs_for(body, text) if body.get("logprobs") else None
                n = int(body.get("n", 1))
                self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": i,
                                "message": {"role": "assistant", "content": text},
                                "logprobs": logprobs,
                                "finish_reason": "stop",
                            }
                            for i in range(n)
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
                    },
                )

        return Handler

    def request_problem(self, body: dict[str, Any]) -> str | None:
        """What this flavour of server would refuse in ``body`` (None: accepted)."""
        if body.get("top_logprobs") is not None:
            if not body.get("logprobs"):
                return "top_logprobs requires logprobs to be true"
            if not 0 <= int(body["top_logprobs"]) <= 20:
                return "top_logprobs must be between 0 and 20"
        fmt = body.get("response_format")
        if fmt is None:
            return None
        kind = fmt.get("type")
        if kind == "json_object":
            if "schema" in fmt and self.flavour == "openai":
                return "Unrecognized request argument supplied: response_format.schema"
            return None
        if kind != "json_schema":
            return f"Invalid value for response_format.type: {kind!r}"
        if self.flavour == "llamacpp":
            return "Internal Server Error"  # measured on llama-cpp-python 0.3.x
        spec = fmt.get("json_schema") or {}
        if "name" not in spec or "schema" not in spec:
            return "response_format.json_schema needs name and schema"
        if spec.get("strict") and self.flavour == "openai":
            schema = spec["schema"]
            props = schema.get("properties", {})
            if schema.get("additionalProperties") is not False:
                return "strict schemas need additionalProperties: false"
            if sorted(schema.get("required", [])) != sorted(props):
                return "strict schemas need every property in required"
            for name, prop in props.items():
                if "maxLength" in prop or "minLength" in prop:
                    return f"'maxLength' is not permitted (property {name!r})"
        return None

    def logprobs_for(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        k = int(body.get("top_logprobs") or 0)
        first = sorted(self.first_token_logprobs(body).items(), key=lambda kv: -kv[1])
        content = []
        for i, token in enumerate(text.split(" ") if text else []):
            alternatives = first if i == 0 else [(token, 0.0)]
            chosen = dict(alternatives).get(token, -20.0)
            content.append(
                {
                    "token": token,
                    "logprob": chosen,
                    "bytes": list(token.encode()),
                    "top_logprobs": [
                        {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives[:k]
                    ],
                }
            )
        return {"content": content, "refusal": None}

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def judge_config(path: Path, fake: FakeOpenAI, **fields: Any) -> Path:
    """Write a judge config YAML at ``path`` that talks to ``fake`` (model "fake", no API key) plus ``fields``."""
    import yaml

    endpoint = {"base_url": fake.base_url, "model": "fake", "api_key_env": None}
    path.write_text(yaml.safe_dump({"endpoint": endpoint, **fields}))
    return path
