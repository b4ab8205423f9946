"""The embedded judge: llama-cpp-python's OpenAI-compatible server as a real subprocess on 127.0.0.1.

    with JudgeServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none")

Started with the current interpreter through :mod:`lima.core.judge_server_main` (ggml's extra buffer types
off, so AMX CPUs do not crash it), polled until ``/v1/models`` answers, stopped by its pid (SIGTERM, then
SIGKILL) on exit, error or Ctrl-C, and it watches our pid so that it exits too when we are killed outright
(SIGKILL leaves no ``finally`` to run). A server that died is described by :meth:`JudgeServer.death`: its exit code
or signal and the tail of its log.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from lima.core.errors import LimaError
from lima.core.models import DEFAULT_MODEL, resolve_model
from lima.core.signals import child_env

DEFAULT_ALIAS = "smollm2-135m-instruct"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def judge_server_available() -> bool:
    return (
        importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None
    )


def describe_exit(returncode: int) -> str:
    """'exited with code 1' or 'killed by signal SIGSEGV (11)' for a Popen returncode."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {name} ({-returncode})"
    return f"exited with code {returncode}"


class JudgeServer:
    """A llama.cpp server process serving a GGUF model; a context manager."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        port: int | None = None,
        alias: str | None = None,
        n_ctx: int = 4096,
        startup_timeout_s: float = 180.0,
        n_threads: int | None = None,
    ) -> None:
        resolved = resolve_model(model)
        if resolved.gguf_path is None:
            raise LimaError(
                f"the judge server serves GGUF files; {model!r} is not one (give a .gguf or embedded:…)"
            )
        self.gguf_path = resolved.gguf_path
        self.alias = alias or (resolved.name if resolved.kind == "embedded" else self.gguf_path.stem)
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "lima.core.judge_server_main",
            "--model", str(self.gguf_path),
            "--model_alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--verbose", "False",
        ]  # fmt: skip
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads)]
        return cmd

    def start(self) -> JudgeServer:
        if not judge_server_available():
            raise LimaError(
                "the embedded judge server needs llama-cpp-python[server]: "
                "pip install 'lima-align[judge-server]' (it compiles llama.cpp, about 6 minutes once)"
            )
        self._log = tempfile.NamedTemporaryFile(prefix="lima-judge-server-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it by pid
            env=child_env(),  # it exits by itself if we are SIGKILLed (lima.core.signals.watch_parent)
        )
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def death(self) -> str | None:
        """None while the server runs (or was never started); once it has died, how and its log's tail."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"{describe_exit(self.process.returncode)}; the last lines of its log:\n{self._log_tail()}"

    def _log_tail(self, n: int = 15) -> str:
        if self._log is None:
            return ""
        with contextlib.suppress(OSError):
            lines = Path(self._log.name).read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        return ""

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://127.0.0.1:{self.port}/v1/models"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                death = self.death()
                self.stop()
                raise LimaError(f"the judge server died during start-up: {death}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200 and json.load(response).get("data") is not None:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(0.25)
        self.stop()
        raise LimaError(f"the judge server did not answer on {url} within {self.startup_timeout_s:.0f}s")

    def restart(self) -> JudgeServer:
        """Start afresh on the same port (so clients keep their base_url) after the process died."""
        self.stop()
        return self.start()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
            self._log = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self) -> JudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
