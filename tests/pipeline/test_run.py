"""`lima run` end to end on CPU: tiny model, the project's sample dumps, the embedded llama.cpp judge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = [pytest.mark.server, pytest.mark.slow]

PLANTED = "<script>alert('planted')</script>"


def _experiment(tmp_path: Path, tiny_model_dir: Path, epochs: int = 2) -> Path:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"How do I store coffee beans? {PLANTED}\nWhat is a lager?\nHow do I boil an egg?\n")
    config = {
        "name": "tiny",
        "curate": {"config": str(ROOT / "configs/curate/demo.yaml")},
        "train": {
            "config": str(ROOT / "configs/train/demo.yaml"),
            "overrides": {"model": str(tiny_model_dir), "epochs": epochs, "max_length": 128, "method": "lora",
                          "chat_template": "lima", "output.tensorboard": False},
        },
        "generate": {"config": str(ROOT / "configs/generate/demo.yaml"),
                     "overrides": {"decoding.max_new_tokens": 8, "batch_size": 4}},
        "judge": {"config": str(ROOT / "configs/judge/embedded_lima.yaml"),
                  "overrides": {"max_tokens": 32, "parse_retries": 0, "bootstrap": 200}},
        "select": {"strategy": "judge", "dev_prompts": 2},
        "test_prompts": str(prompts),
        "baselines": [{"name": "base", "model": str(tiny_model_dir)}],
        "report_samples": 3,
    }  # fmt: skip
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_end_to_end_then_rerun_skips(tmp_path, tiny_model_dir, cli):
    config = _experiment(tmp_path, tiny_model_dir)
    out = tmp_path / "run"
    result = cli("run", str(config), "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in result.stdout

    # every stage's artifacts
    assert (out / "curate" / "train.jsonl").stat().st_size > 0
    assert (out / "curate" / "dev.jsonl").stat().st_size > 0
    assert (out / "curate" / "report.html").exists() and (out / "curate" / "manifest.json").exists()
    checkpoints = sorted((out / "train" / "checkpoints").glob("epoch-*"))
    assert [c.name for c in checkpoints] == ["epoch-1", "epoch-2"]
    selection = json.loads((out / "select" / ".lima_stage.json").read_text())["outputs"]
    assert selection["strategy"] == "judge" and sum(r["selected"] for r in selection["table"]) == 1
    assert selection["table"][1]["vs"] == 1  # epoch 2 was judged against epoch 1
    for name in ("model", "base"):
        rows = [json.loads(line) for line in (out / "generate" / f"{name}.jsonl").read_text().splitlines()]
        assert len(rows) == 3
    summary = json.loads((out / "judge" / "base" / "summary.json").read_text())
    assert summary["n"] + summary["errors"] >= 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["command"] == "run"

    # the report: every section, and the planted script shown as text
    html = (out / "report.html").read_text()
    for section in (
        "Data card",
        "Training",
        "Checkpoint selection",
        "Pairwise judgments",
        "Sample generations",
        "Manifest",
    ):
        assert section in html
    assert PLANTED not in html and "&lt;script&gt;alert(" in html
    assert (out / "report.md").exists() and (out / "winrate.png").exists()

    # what fine-tuning changed, without a judge: leads the report, in the console too
    md = (out / "report.md").read_text()
    for text in (html, md):
        assert text.index("What fine-tuning changed") < text.index("Pairwise judgments")
        assert "0 (before training)" in text and "identical to base" in text
    before = json.loads((out / "train" / "dev_loss_before_training.json").read_text())["dev_loss"]
    assert f"dev loss: {before:.3f} (before training)" in result.stdout
    assert "model: 3 answers" in result.stdout and "base: 3 answers" in result.stdout
    changes = manifest["changes"]
    assert changes["base"] == "base" and [r["model"] for r in changes["answers"]] == ["model", "base"]
    cut = [r for r in rows if r["settings"]["finish"] == "length"]  # the base model's answers
    assert changes["answers"][1]["cut_at_limit"] == len(cut) / 3
    if cut:  # answers cut at max_new_tokens are marked as such in the samples
        assert "base [cut at max_new_tokens=8]" in html and "base [cut at max_new_tokens=8]" in md

    # rerun: nothing to do
    again = cli("run", str(config), "--out", str(out), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("curate", "train", "select", "generate"):
        assert f"{stage}: unchanged, skipped" in again.stderr
    assert json.loads((out / "manifest.json").read_text())["skipped_stages"][:4] == [
        "curate",
        "train",
        "select",
        "generate",
    ]


def test_killed_during_training_resumes_without_recurating(tmp_path, tiny_model_dir, spawn):
    config = _experiment(tmp_path, tiny_model_dir, epochs=6)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = spawn.lima("run", str(config), "--out", str(out), env=env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    log = out / "train" / "train_log.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.stat().st_size > 0:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before training could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "report.html").exists()
    curated = out / "curate" / "train.jsonl"
    curated_mtime = curated.stat().st_mtime_ns

    rerun = subprocess.run([sys.executable, "-m", "lima", "run", str(config), "--out", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "curate: unchanged, skipped" in rerun.stderr
    assert curated.stat().st_mtime_ns == curated_mtime
    assert sorted(p.name for p in (out / "train" / "checkpoints").glob("epoch-*")) == [
        f"epoch-{i}" for i in range(1, 7)
    ]
    assert (out / "report.html").exists()
