"""bench/gpu_check.sh --smoke: the prepared GPU check's every step on CPU with tiny models, so the script is
known to work before a device is lent (the gpu tests collect and skip, the throughput bench runs all methods
on both sides, and the QLoRA `lima train` step trains on a 4-bit base)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import ROOT
from tests.finetune.conftest import THREADS

SCRIPT = ROOT / "bench" / "gpu_check.sh"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **THREADS, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )


@pytest.mark.slow  # ~50 s of CPU: nine tiny trainings (2.5 min wall on the shared build machine)
def test_smoke_runs_every_step_and_writes_the_summary(tmp_path):
    result = _run("--smoke", "--out", str(tmp_path))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    summary = json.loads((tmp_path / "gpu_check_cpu-smoke.json").read_text())
    assert summary["ok"] is True and summary["device"] == "cpu-smoke"
    assert {name: step["exit"] for name, step in summary["steps"].items()} == {
        "gpu_tests": 0, "throughput": 0, "estimate_check": 0, "qlora_train": 0,
    }  # fmt: skip
    assert "time budget 420s" in result.stdout and summary["budget_s"] == 420 and summary["total_s"] <= 420
    # lima estimate against the same real step (on CPU: traced real tensors), LoRA and QLoRA
    checks = summary["estimate_check"]
    assert sorted(checks) == ["lora", "qlora"] and all(c["within_10pct"] for c in checks.values()), checks
    pytest_log = (tmp_path / "gpu_check_cpu-smoke_pytest.log").read_text()
    assert "needs a CUDA GPU" in pytest_log and "error" not in pytest_log.lower()  # collected, then skipped
    throughput = summary["throughput"]
    assert sorted(throughput) == sorted(
        f"{m} {s}" for m in ("lora", "qlora", "full") for s in ("lima", "trl")
    )
    assert all(row["status"] == "ok" and row["tokens_per_s"] > 0 for row in throughput.values())
    assert (tmp_path / "train_throughput_gpu_cpu-smoke.md").is_file()
    qlora = summary["qlora_train"]
    assert qlora["status"] == "ok" and qlora["steps"] >= 1 and qlora["quantized_base"]["unchanged"] is True
    assert qlora["quantized_base"]["before"]["params4bit"] == 2 * 7  # the bench's 2-layer Llama, in 4-bit
    assert all(0 < loss < 100 for loss in qlora["losses"])


def test_gpu_budget_fits_a_lent_device():
    """The GPU run's step limits fit its 6-minute budget (a lent device has ~15 minutes in all)."""
    text = SCRIPT.read_text()
    assert "BUDGET_S=360" in text and "LIMITS=(35 150 100 60)" in text and 35 + 150 + 100 + 60 <= 360


def test_bad_argument_and_no_gpu_are_one_line_errors(tmp_path):
    bad = _run("--bogus")
    assert bad.returncode == 2 and "unknown argument --bogus" in bad.stderr
    no_gpu = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "PATH": "/usr/bin:/bin"}, cwd=ROOT, timeout=60)  # fmt: skip
    assert no_gpu.returncode == 2 and "no GPU" in no_gpu.stderr and not list(tmp_path.iterdir())
