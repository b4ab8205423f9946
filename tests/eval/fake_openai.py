"""A small local OpenAI-compatible HTTP server for client tests and the throughput bench.

It answers ``POST /v1/chat/completions`` from a script of HTTP statuses (then 200s), with an optional fixed
latency and a bounded number of parallel slots, and records every request body it saw.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(
        self,
        statuses: list[int] | None = None,
        latency_s: float = 0.0,
        slots: int = 64,
        reply: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
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
                text = fake.reply(body)
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
                                "finish_reason": "stop",
                            }
                            for i in range(n)
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
                    },
                )

        return Handler

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
