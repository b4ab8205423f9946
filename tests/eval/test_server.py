"""Against the real llama.cpp judge server with the embedded model: both orders for 10 LIMA test prompts,
a rerun that sends nothing, and a kill -9 mid-run whose rerun repeats no finished item.

The 135M judge is weak: its replies are often unparseable. These tests assert mechanics, not quality.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

pytestmark = [pytest.mark.server, pytest.mark.slow]

N = 10  # prompts judged in both orders
K = 6  # prompts in the kill -9 run


@pytest.fixture(scope="module")
def gens(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gens")
    rows = [
        json.loads(line) for line in (shared_data / "lima" / "lima_test_300.jsonl").read_text().splitlines()
    ]
    # The N shortest prompts keep the CPU judge quick; ids are the LIMA test file's line numbers.
    shortest = sorted(sorted(range(len(rows)), key=lambda i: len(rows[i]["conversations"][0]))[:N])
    for name, answer in (
        ("a", lambda p: f"Here is a careful answer: {p[:80]}"),
        ("b", lambda p: "I don't know."),
    ):
        with open(folder / f"{name}.jsonl", "w") as fh:
            for i in shortest:
                prompt = rows[i]["conversations"][0]
                fh.write(
                    json.dumps(
                        {
                            "prompt_id": f"lima_test_300-{i + 1}",
                            "prompt": prompt,
                            "model": name,
                            "output": answer(prompt),
                            "settings": {},
                        }
                    )
                    + "\n"
                )
    return folder / "a.jsonl", folder / "b.jsonl"


@pytest.fixture(scope="module")
def server_config(judge_server, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "judge.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "endpoint": {
                    "base_url": judge_server.base_url,
                    "model": judge_server.alias,
                    "api_key_env": None,
                    "concurrency": 1,
                },
                "template": "lima_3way.txt",
                "parser": "lima_3way",
                "max_tokens": 8,
                "parse_retries": 0,
                "max_answer_chars": 300,
            }
        )
    )
    return path


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_ten_prompts_both_orders_and_cached_rerun(gens, server_config, tmp_path, cli):
    a, b = gens
    out = tmp_path / "run"
    first = cli("judge", str(server_config), "--a", str(a), "--b", str(b), "--out", str(out))
    assert first.returncode == 0, first.stderr
    summary = _summary(out)
    assert summary["client"]["requests"] == 2 * N and summary["client"]["cache_hits"] == 0
    judgments = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    assert len(judgments) == N
    for j in judgments:
        assert [o["order"] for o in j["orders"]] == ["AB", "BA"] and all(
            o["raw"] is not None for o in j["orders"]
        )
        assert (j["verdict"] is None) == (j["error"] is not None)  # unparseable -> error, never a tie
    assert summary["n"] + summary["errors"] == N
    assert summary["errors"] == sum(j["verdict"] is None for j in judgments)

    rerun = cli("judge", str(server_config), "--a", str(a), "--b", str(b), "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert _summary(out)["client"]["requests"] == 0 and _summary(out)["client"]["cache_hits"] == 2 * N
    assert [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()] == judgments


def _cached(path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_kill_9_mid_run_then_rerun_repeats_nothing(gens, server_config, tmp_path, cli, spawn):
    a, b = gens
    out = tmp_path / "run"
    cache = out / "judge_cache.sqlite"
    process = spawn(
        [
            sys.executable,
            "-m",
            "lima",
            "judge",
            str(server_config),
            "--a",
            str(a),
            "--b",
            str(b),
            "--out",
            str(out),
            "--limit",
            str(K),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    deadline = time.monotonic() + 240
    while _cached(cache) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _cached(cache)
    assert 2 <= before < 2 * K, "the kill should land mid-run"
    assert not (out / "summary.json").exists()

    rerun = cli(
        "judge", str(server_config), "--a", str(a), "--b", str(b), "--out", str(out), "--limit", str(K)
    )
    assert rerun.returncode == 0, rerun.stderr
    client = _summary(out)["client"]
    assert client["cache_hits"] == before  # every finished item came from the cache ...
    assert client["requests"] == 2 * K - before  # ... and only the unfinished ones were sent
    assert _cached(cache) == 2 * K


def test_grade_with_embedded_endpoint_starts_and_stops_the_server(gens, tmp_path, cli):
    """`base_url: embedded`: lima starts the llama.cpp server itself, uses it and stops it."""
    a, _ = gens
    mark = f"lima-test-{os.getpid()}-{time.time_ns()}"
    result = cli(
        "grade",
        "configs/grade/embedded_likert.yaml",
        "--gen",
        str(a),
        "--limit",
        "1",
        "--samples",
        "1",
        "max_tokens=8",
        "parse_retries=0",
        "--out",
        str(tmp_path / "g"),
        env={"LIMA_TEST_MARK": mark},
    )
    assert result.returncode == 0, result.stderr
    summary = _summary(tmp_path / "g")
    assert summary["client"]["requests"] == 1 and summary["n"] + summary["errors"] == 1
    assert json.loads((tmp_path / "g" / "manifest.json").read_text())["status"] == "ok"
    assert not _processes_with(mark), "the embedded server outlived the command"


def _processes_with(mark: str) -> list[int]:
    """Live processes whose environment carries ``mark`` (children inherit it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if mark.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _server_pids(mark: str) -> list[int]:
    pids = []
    for pid in _processes_with(mark):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"judge_server_main" in fh.read():
                    pids.append(pid)
        except OSError:
            continue
    return pids


def test_embedded_server_killed_mid_judging_is_restarted_and_a_rerun_repeats_nothing(
    gens, tmp_path, cli, spawn
):
    """SIGKILL the llama.cpp server that `lima judge` started: the run says it crashed, restarts it once and
    finishes; a rerun sends nothing."""
    a, b = gens
    out = tmp_path / "run"
    cache = out / "judge_cache.sqlite"
    mark = f"lima-test-{os.getpid()}-{time.time_ns()}"
    args = [
        "judge", "configs/judge/embedded_lima.yaml", "--a", str(a), "--b", str(b), "--out", str(out),
        "--limit", str(K), "endpoint.concurrency=1", "max_tokens=8", "parse_retries=0", "max_answer_chars=300",
    ]  # fmt: skip
    process = spawn(
        [sys.executable, "-m", "lima", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LIMA_TEST_MARK": mark},
    )
    deadline = time.monotonic() + 240
    while _cached(cache) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    victims = _server_pids(mark)
    assert len(victims) == 1, "expected the one server lima started"
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "crashed, killed by signal SIGKILL (9)" in stderr and "is the server running" not in stderr
    client = _summary(out)["client"]
    assert client["server_restarts"] == 1
    assert _cached(cache) == 2 * K

    rerun = cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert _summary(out)["client"]["requests"] == 0 and _summary(out)["client"]["cache_hits"] == 2 * K
