"""--resume in an --out that a run left before its first resume state: it says so and starts clean (the old
log rows used to stay, and the epoch-1 train loss averaged them in)."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.finetune.conftest import THREADS, train_args


def test_resume_without_state_says_so_and_drops_old_log_rows(tiny_model_dir, train_files, tmp_path):
    data, _ = train_files
    out = tmp_path / "run"
    out.mkdir()
    stale = {"step": 1, "epoch": 0.25, "loss": 99.0, "lr": 0.001, "grad_norm": 1.0, "tokens_per_s": 1.0}
    (out / "train_log.jsonl").write_text(json.dumps(stale) + "\n")
    result = run_cli(*train_args(tiny_model_dir, data, None, out, "epochs=1"), "--resume", env=THREADS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "holds no resume state" in result.stdout and "starting from step 0" in result.stdout
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and 99.0 not in [r["loss"] for r in rows]
    (epoch,) = [json.loads(line) for line in (out / "epochs.jsonl").read_text().splitlines()]
    assert epoch["train_loss"] < 50
