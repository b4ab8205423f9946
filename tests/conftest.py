"""Shared fixtures: tiny random models, the shared real data, the embedded judge server; marker handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# No hub in this world: fail fast instead of retrying the network for 25 s per lookup.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)
    from lima.core.judge_server import judge_server_available

    if not judge_server_available():
        skip_server = pytest.mark.skip(
            reason="needs llama-cpp-python[server] (pip install -e '.[judge-server]')"
        )
        for item in items:
            if "server" in item.keywords:
                item.add_marker(skip_server)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama (2 layers, hidden 64) with a 512-token BPE tokenizer and no chat template,
    i.e. shaped like a *base* model."""
    from lima.core.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def embedded_model_spec() -> str:
    from lima.core.models import DEFAULT_MODEL

    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def judge_server():
    """One embedded llama.cpp judge server shared by the server tests of a session."""
    from lima.core.judge_server import JudgeServer, judge_server_available

    if not judge_server_available():
        pytest.skip("needs llama-cpp-python[server]")
    with JudgeServer(n_threads=2) as server:
        yield server


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None):
    """Run the real ``lima`` CLI in a subprocess; returns the CompletedProcess (text mode)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lima", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(cwd or ROOT),
    )


@pytest.fixture
def cli():
    return run_cli


class Spawned:
    """Subprocesses a test starts, stopped by pid when the test ends, on failure too: each in its own process
    group (killed whole), plus any extra pid the test learns of (a server a lima process started)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.pids: list[int] = []

    def __call__(self, args: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("start_new_session", True)
        kwargs.setdefault("cwd", str(ROOT))
        process = subprocess.Popen(args, **kwargs)
        self.processes.append(process)
        return process

    def lima(self, *args: str, **kwargs) -> subprocess.Popen:
        return self([sys.executable, "-m", "lima", *args], **kwargs)

    def track(self, pid: int) -> None:
        self.pids.append(pid)

    def stop_all(self) -> None:
        import contextlib
        import signal

        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def spawn():
    """``spawn.lima("serve-judge", stdout=PIPE)``: a subprocess that cannot outlive the test."""
    spawned = Spawned()
    try:
        yield spawned
    finally:
        spawned.stop_all()
