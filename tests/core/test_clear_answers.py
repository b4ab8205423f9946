"""Every input gets a clear answer and nothing is silently mixed or doubled (issue 19): one test per row of the
issue's table, through the real CLI on tiny models."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.eval.fake_openai import FakeOpenAI

PROMPTS = {"p1": "Name a colour.", "p2": "What is 2+2?"}


def _one_line(result, *needles: str) -> None:
    """Exit 2, no traceback, and the last stderr line says every needle."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in line, line


def _gen(path: Path, model: str, outputs: dict[str, str], name: str | None = None) -> Path:
    rows = [{"prompt_id": pid, "prompt": PROMPTS[pid], "model": model, "output": out, "settings": {}}
            | ({"name": name} if name else {}) for pid, out in outputs.items()]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _judge_config(tmp_path: Path, base_url: str) -> Path:
    data = {"endpoint": {"base_url": base_url, "model": "fake-judge", "api_key_env": None, "max_retries": 0}}
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("how to brew coffee\nwrite a poem about beer\n")
    return path


def _generate(cli, tiny, tmp_path, out, *extra: str):
    return cli("generate", "configs/generate/demo.yaml", "decoding.max_new_tokens=4", "--model", str(tiny),
               "--prompts", str(_prompts(tmp_path)), "--out", str(out), *extra)  # fmt: skip


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, cli, tiny_model_dir):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "4"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5"})
    judge = cli(
        "judge", "configs/judge/embedded_lima.yaml", "--a", str(a), "--b", str(b), "--out", str(taken)
    )
    curate = cli("curate", "configs/curate/demo.yaml", "--out", str(taken))
    train = cli("train", "configs/train/tiny.yaml", f"model={tiny_model_dir}", "--data", "data/manual.jsonl",
                "--out", str(taken))  # fmt: skip
    for result in (judge, curate, train):
        _one_line(result, f"--out {taken}: an existing file", "choose a folder path")
    assert taken.read_text() == "keep me"


def test_generate_out_that_is_a_folder_is_refused(tmp_path, cli, tiny_model_dir):
    folder = tmp_path / "gens"
    folder.mkdir()
    _one_line(
        _generate(cli, tiny_model_dir, tmp_path, folder), f"--out {folder}: a folder", "give a file path"
    )


def test_unwritable_out_is_refused(tmp_path, cli, tiny_model_dir):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "4"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5"})
    judge = cli("judge", "configs/judge/embedded_lima.yaml", "--a", str(a), "--b", str(b), "--out", "/proc/x")
    _one_line(judge, "--out /proc/x: cannot write in /proc", "choose a writable location")
    generate = _generate(cli, tiny_model_dir, tmp_path, Path("/proc/x/gen.jsonl"))
    _one_line(generate, "--out /proc/x/gen.jsonl: cannot write in /proc", "choose a writable location")


def test_generate_with_a_folder_that_is_not_a_model_names_it(tmp_path, cli):
    not_a_model = tmp_path / "my-model"
    not_a_model.mkdir()
    (not_a_model / "tokenizer.json").write_text("{}")
    result = _generate(cli, not_a_model, tmp_path, tmp_path / "gen.jsonl")
    _one_line(result, f"{not_a_model} is not a model folder (no config.json)")
    assert "sentencepiece" not in result.stderr


def test_resumed_generation_never_mixes_settings(tmp_path, cli, tiny_model_dir):
    out = tmp_path / "gen.jsonl"
    first = _generate(cli, tiny_model_dir, tmp_path, out, "--limit", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    changed = _generate(cli, tiny_model_dir, tmp_path, out, "decoding.max_new_tokens=2")
    _one_line(changed, f"{out}: made with other settings", "decoding.max_new_tokens: 4 there, 2 now",
              "new --out", "--overwrite")  # fmt: skip
    assert len(out.read_text().splitlines()) == 1  # nothing appended
    again = _generate(cli, tiny_model_dir, tmp_path, out, "decoding.max_new_tokens=2", "--overwrite")
    assert again.returncode == 0, again.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and {line["settings"]["max_new_tokens"] for line in lines} == {2}


def test_a_second_run_into_one_out_is_refused_naming_the_first(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "4"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5"})
    out = tmp_path / "judged"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": holder.pid, "host": socket.gethostname(), "command": "lima judge other run"}
        (out / ".lima.lock").write_text(json.dumps(lock))
        with FakeOpenAI(reply=lambda body: "Answer A is significantly better") as fake:
            config = _judge_config(tmp_path, fake.base_url)
            args = ("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(out))
            second = cli(*args)
            _one_line(second, f"pid {holder.pid}", "lima judge other run", "another --out")
            assert fake.requests == []  # nothing sent twice
            holder.kill()
            holder.wait()
            taken_over = cli(*args)  # its process is gone: the stale lock is taken over
            assert taken_over.returncode == 0, taken_over.stderr[-3000:]
            assert len(fake.requests) == 4 and not (out / ".lima.lock").exists()
    finally:
        holder.kill()


def test_hub_id_without_network_fails_fast(tmp_path, cli):
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        pytest.skip("this machine reaches the Hugging Face Hub")
    except OSError:
        pass
    args = ("generate", "configs/generate/demo.yaml", "--prompts", str(_prompts(tmp_path)))
    start = time.monotonic()
    local = cli(*args, "--model", "./no-such-model", "--out", str(tmp_path / "l.jsonl"))
    baseline = time.monotonic() - start  # the same command failing on a local path: imports, config, prompts
    _one_line(local, "no such local path")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    for offline in ({}, {"HF_HUB_OFFLINE": "1"}):
        start = time.monotonic()
        hub = subprocess.run([sys.executable, "-m", "lima", *args, "--model", "nobody-here/no-such-model",
                              "--out", str(tmp_path / "h.jsonl")], capture_output=True, text=True, timeout=120,
                             env={**env, **offline}, cwd=ROOT)  # fmt: skip
        elapsed = time.monotonic() - start
        _one_line(hub, "'nobody-here/no-such-model' could not be loaded from the Hugging Face Hub")
        assert elapsed - baseline < 5, (elapsed, baseline, hub.stderr[-2000:])
        assert "HF_HUB_OFFLINE" in hub.stderr if offline else "no network" in hub.stderr


def _notices(text: str) -> list[str]:
    needles = ("Warning:", "kernels-community", "trust_remote_code", "deprecated", "[transformers]", "mtime")
    return [line for line in text.splitlines() if any(n in line for n in needles)]


def test_commands_print_no_third_party_notices(tmp_path, cli, tiny_model_dir):
    doctor = cli("doctor", "--skip-server", "--skip-model")
    gen = _generate(cli, tiny_model_dir, tmp_path, tmp_path / "gen.jsonl")
    curate = cli(
        "curate", "configs/curate/demo.yaml", "report.embedding_map=false", "--out", str(tmp_path / "c")
    )
    train = cli("train", "configs/train/tiny.yaml", f"model={tiny_model_dir}", "epochs=1", "max_length=64",
                "--data", str(tmp_path / "c" / "train.jsonl"), "--out", str(tmp_path / "t"))  # fmt: skip
    for result in (doctor, gen, curate, train):
        assert result.returncode in (0, 1), result.stderr[-3000:]  # doctor: 1 when something is unusable
        assert _notices(result.stdout + result.stderr) == []


def test_verbose_shows_the_notices_again(cli):
    code = "import warnings; warnings.warn('x is deprecated', FutureWarning)"
    quiet = subprocess.run([sys.executable, "-c", f"from lima.core.quiet import quiet_third_party as q; q(); {code}"],
                           capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    loud = subprocess.run([sys.executable, "-c", f"from lima.core.quiet import quiet_third_party as q; q(True); {code}"],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert "deprecated" not in quiet.stderr and "deprecated" in loud.stderr
    assert "--verbose" in cli("--help").stdout


def test_models_get_short_names_and_name_sets_one(tmp_path, cli, tiny_model_dir):
    run = tmp_path / "runs" / "demo" / "checkpoints"
    run.mkdir(parents=True)
    checkpoint = run / "epoch-2"
    checkpoint.symlink_to(tiny_model_dir, target_is_directory=True)
    default = tmp_path / "default.jsonl"
    assert _generate(cli, checkpoint, tmp_path, default).returncode == 0
    named = tmp_path / "named.jsonl"
    assert _generate(cli, tiny_model_dir, tmp_path, named, "--name", "my tiny").returncode == 0
    names = {json.loads(line)["name"] for line in default.read_text().splitlines()}
    assert names == {"epoch-2 of runs/demo"}  # tmp_path is outside the working directory: its last two parts
    with FakeOpenAI(reply=lambda body: "Answer A is significantly better") as fake:
        config = _judge_config(tmp_path, fake.base_url)
        judged = cli(
            "judge", str(config), "--a", str(named), "--b", str(default), "--out", str(tmp_path / "j")
        )
    assert judged.returncode == 0, judged.stderr[-3000:]
    summary = json.loads((tmp_path / "j" / "summary.json").read_text())
    assert (summary["model_a"], summary["model_b"]) == ("my tiny", "epoch-2 of runs/demo")
    report = (tmp_path / "j" / "report.html").read_text()
    assert str(tiny_model_dir) not in report and str(checkpoint) not in report
    fastchat = tmp_path / "model_answer" / "x.jsonl"
    assert cli("export-generations", "mt_bench", str(named), "--out", str(fastchat)).returncode == 0
    assert {json.loads(line)["model_id"] for line in fastchat.read_text().splitlines()} == {"my tiny"}
    alpaca = tmp_path / "model_outputs.json"
    assert cli("export-generations", "alpaca_eval", str(default), "--out", str(alpaca)).returncode == 0
    assert {row["generator"] for row in json.loads(alpaca.read_text())} == {summary["model_b"]}


def test_judging_a_file_against_itself_warns(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "4"})
    twin = _gen(tmp_path / "twin.jsonl", "theirs", {"p1": "red", "p2": "4"})
    with FakeOpenAI(reply=lambda body: "Neither is significantly better") as fake:
        config = _judge_config(tmp_path, fake.base_url)
        same = cli("judge", str(config), "--a", str(a), "--b", str(a), "--out", str(tmp_path / "j1"))
        identical = cli("judge", str(config), "--a", str(a), "--b", str(twin), "--out", str(tmp_path / "j2"))
    assert same.returncode == 0 and "warning: --a and --b are the same file" in same.stderr
    assert identical.returncode == 0 and "give the same answer to all 2 prompt(s)" in identical.stderr


def test_judge_and_grade_refuse_to_replace_a_result_made_with_other_settings(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "4"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5"})
    judged, graded = tmp_path / "j", tmp_path / "g"
    with FakeOpenAI(reply=lambda body: "Answer A is significantly better. Score: 5") as fake:
        config = _judge_config(tmp_path, fake.base_url)
        judge = ("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(judged))
        grade = ("grade", str(config), "--gen", str(a), "--samples", "1", "--out", str(graded))
        assert cli(*judge).returncode == 0 and cli(*grade).returncode == 0
        assert cli(*judge, "endpoint.concurrency=8", "bootstrap=200").returncode == 0  # run-only: no refusal
        _one_line(
            cli(*judge, "temperature=0.5"), "made with other settings", "temperature: 0.0 there, 0.5 now"
        )
        _one_line(cli(*grade, "--samples", "2"), "made with other settings", "samples: 1 there, 2 now")
        assert cli(*judge, "temperature=0.5", "--overwrite").returncode == 0
        assert cli(*judge, "temperature=0.5").returncode == 0  # the new settings are the folder's now
