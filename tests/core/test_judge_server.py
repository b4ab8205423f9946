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


def _ignore_sigint() -> None:
    # What a background job of a non-interactive shell, nohup or many CI runners start with.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_serve_judge(spawn, **kwargs):
    """`lima serve-judge` in a subprocess: (process, base_url, model alias, the server's pid)."""
    proc = spawn.lima("serve-judge", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    base_url = proc.stdout.readline().strip()
    model = proc.stdout.readline().strip()
    assert base_url.startswith("base_url: http://127.0.0.1:"), proc.stderr.read() if proc.poll() else base_url
    server_pid = int(proc.stderr.readline().split("pid:")[1].split()[0])
    spawn.track(server_pid)
    return proc, base_url.split(": ", 1)[1], model.split(": ", 1)[1], server_pid


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


def test_serve_judge_cli_answers_and_stops(spawn):
    import openai

    proc, base_url, model, server_pid = _start_serve_judge(spawn)
    client = openai.OpenAI(base_url=base_url, api_key="none")
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=8, temperature=0
    )
    assert reply.choices[0].message.content.strip()
    assert _alive(server_pid)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert _gone_within(server_pid, 10), "the llama.cpp server outlived `lima serve-judge`"


def test_serve_judge_stops_on_sigint_even_when_started_with_sigint_ignored(spawn):
    """A process that starts with SIGINT ignored keeps it ignored unless it sets a handler itself."""
    proc, _, _, server_pid = _start_serve_judge(spawn, preexec_fn=_ignore_sigint)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("`lima serve-judge` started with SIGINT ignored did not stop on SIGINT")
    assert _gone_within(server_pid, 10), "the llama.cpp server outlived `lima serve-judge`"


def test_serve_judge_stops_its_server_on_sigterm(spawn):
    proc, _, _, server_pid = _start_serve_judge(spawn, preexec_fn=_ignore_sigint)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert _gone_within(server_pid, 10), "the llama.cpp server outlived `lima serve-judge`"


def test_server_exits_when_serve_judge_is_killed_outright(spawn):
    """SIGKILL leaves no `finally` to run: the server must notice its parent is gone by itself."""
    proc, _, _, server_pid = _start_serve_judge(spawn)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _gone_within(server_pid, 5), (
        "the llama.cpp server kept running after its lima parent was SIGKILLed"
    )


def test_context_manager_stops_server_on_error():
    from lima.core.judge_server import JudgeServer

    server = JudgeServer(n_threads=2)
    with pytest.raises(RuntimeError), server:
        pid = server.pid
        assert _alive(pid)
        raise RuntimeError("stage failed")
    assert not _alive(pid)


def test_describe_exit_names_the_signal():
    from lima.core.judge_server import describe_exit

    assert describe_exit(-11) == "killed by signal SIGSEGV (11)"
    assert describe_exit(-9) == "killed by signal SIGKILL (9)"
    assert describe_exit(1) == "exited with code 1"


def test_server_command_runs_the_launcher_that_turns_extra_buffers_off():
    from lima.core.judge_server import JudgeServer

    command = JudgeServer(port=1234).command()
    assert command[1:3] == ["-m", "lima.core.judge_server_main"]


_PROBE = """
import sys
from lima.core.models import resolve_model
from lima.core.judge_server_main import disable_extra_buffer_types
if sys.argv[1] == "launcher":
    assert disable_extra_buffer_types()
from llama_cpp import Llama
llm = Llama(model_path=str(resolve_model("embedded:smollm2-135m-instruct").gguf_path), n_ctx=256, verbose=False)
print("use_extra_bufts", llm.model_params.use_extra_bufts)
"""


@pytest.mark.parametrize(("mode", "expected"), [("launcher", "False"), ("plain", "True")])
def test_the_model_the_server_builds_has_no_extra_buffer_types(mode, expected):
    """ggml's AMX extra buffer type segfaults on some AMX VMs (llama.cpp issue 20824): the server's Llama must
    be built without extra buffer types. 'plain' is the control: llama-cpp-python's own default keeps them."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert f"use_extra_bufts {expected}" in out


def _client(tmp_path):
    from lima.core.endpoint import EndpointConfig
    from lima.core.llm_client import LLMClient

    endpoint = EndpointConfig(base_url="embedded", api_key_env=None, concurrency=1, max_retries=2)
    return LLMClient(endpoint, cache_path=tmp_path / "cache.sqlite", progress=False, backoff_base_s=0.1)


def _requests(n: int):
    from lima.core.llm_client import ChatRequest

    return [
        ChatRequest(
            key=f"q{i}", messages=[{"role": "user", "content": f"Name a colour. ({i})"}], max_tokens=4
        )
        for i in range(n)
    ]


def _kill_after(client, counts: set[int]):
    """on_result hook: SIGKILL the embedded server right after the n-th fresh result, for n in ``counts``."""
    seen = [0]

    def hook(result):
        if result.cached:
            return
        seen[0] += 1
        if seen[0] in counts:
            os.kill(client._server.pid, signal.SIGKILL)

    return hook


def test_killed_server_is_restarted_and_the_run_continues(tmp_path, capsys):
    with _client(tmp_path) as client:
        results = client.complete_many(_requests(4), on_result=_kill_after(client, {1}))
        assert [r.ok for r in results] == [True] * 4
        assert client.stats.server_restarts == 1
    err = capsys.readouterr().err
    assert "crashed, killed by signal SIGKILL (9)" in err
    assert "is the server running" not in err


def test_second_crash_stops_with_the_crash_and_a_rerun_repeats_nothing(tmp_path):
    from lima.core.errors import LimaError

    with _client(tmp_path) as client, pytest.raises(LimaError) as info:
        client.complete_many(_requests(5), on_result=_kill_after(client, {1, 3}))
    message = str(info.value)
    assert "crashed again" in message and "SIGKILL" in message and "rerun" in message
    assert "is the server running" not in message
    with _client(tmp_path) as client:
        results = client.complete_many(_requests(5))
        assert all(r.ok for r in results)
        assert client.stats.cache_hits == 3  # the three finished before the second crash
        assert client.stats.requests == 2  # only the two unfinished ones were sent
