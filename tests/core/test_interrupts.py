"""Ctrl-C and SIGTERM stop every long command cleanly, whatever signal disposition it inherited, with one line
saying what finished and the command that resumes (exit 130 / 143)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.finetune.conftest import THREADS, records, write_jsonl


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job of a non-interactive shell starts


def _wait_for(condition, process, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return
        time.sleep(0.05)
    assert process.poll() is None, "the command ended before it could be interrupted"
    pytest.fail("the command never reached the point where it is interrupted")


def _lines(path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.exists() else 0


@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_generate_stops_on_a_signal_says_what_finished_and_resumes(
    signum, code, name, tmp_path, tiny_model_dir, spawn, cli
):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"question number {i} about beer\n" for i in range(60)))
    out = tmp_path / "gen.jsonl"
    args = ["generate", "configs/generate/demo.yaml", "decoding.max_new_tokens=24", "batch_size=1",
            "--model", str(tiny_model_dir), "--prompts", str(prompts), "--out", str(out)]  # fmt: skip
    proc = spawn.lima(*args, stderr=subprocess.PIPE, text=True, preexec_fn=_ignore_sigint,
                      env={**os.environ, **THREADS})  # fmt: skip
    _wait_for(lambda: _lines(out) >= 1, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr
    kept = _lines(out)
    assert 1 <= kept < 60
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"interrupted ({name}): {kept} generations kept in {out}"), last
    assert "resume with: lima generate configs/generate/demo.yaml" in last

    rerun = cli(*args, "--limit", str(kept + 2), timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    ids = [json.loads(line)["prompt_id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == kept + 2, "the rerun continued where the interrupted run stopped"


def test_train_stops_on_sigint_when_started_with_it_ignored_and_names_the_resume_command(
    tmp_path, tiny_model_dir, spawn
):
    data = write_jsonl(tmp_path / "train.jsonl", records(24))
    out = tmp_path / "run"
    proc = spawn.lima("train", "configs/train/tiny.yaml", f"model={tiny_model_dir}", "epochs=40",
                      "--data", str(data), "--out", str(out), stderr=subprocess.PIPE, text=True,
                      preexec_fn=_ignore_sigint, env={**os.environ, **THREADS})  # fmt: skip
    log = out / "train_log.jsonl"
    _wait_for(lambda: log.exists() and log.stat().st_size > 0, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted (Ctrl-C): ") and last.endswith("--resume"), last
    assert f"--out {out}" in last
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
