import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): check its state
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_serve_judge_cli_answers_and_stops(tmp_path):
    import openai

    proc = subprocess.Popen(
        [sys.executable, "-m", "lima", "serve-judge"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        model = proc.stdout.readline().strip()
        assert base_url.startswith("base_url: http://127.0.0.1:"), proc.stderr.read() if proc.poll() else base_url
        pid_line = proc.stderr.readline()
        server_pid = int(pid_line.split("pid:")[1].split()[0])
        client = openai.OpenAI(base_url=base_url.split(": ", 1)[1], api_key="none")
        reply = client.chat.completions.create(
            model=model.split(": ", 1)[1],
            messages=[{"role": "user", "content": "What is 2 + 2?"}],
            max_tokens=8,
            temperature=0,
        )
        assert reply.choices[0].message.content.strip()
        assert _alive(server_pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server_pid), "the llama.cpp server outlived `lima serve-judge`"


def test_context_manager_stops_server_on_error():
    from lima.core.judge_server import JudgeServer

    server = JudgeServer(n_threads=2)
    with pytest.raises(RuntimeError), server:
        pid = server.pid
        assert _alive(pid)
        raise RuntimeError("stage failed")
    assert not _alive(pid)
