"""bench/published_numbers.py: lima's numbers beside an anchor's, through the real CLI.

The anchors here are computed independently in the test (AlpacaEval's leaderboard arithmetic with pandas; a
stand-in for FastChat's show_result.py that prints its table the way pandas prints FastChat's), so the script's
reading, comparison and exit code are what is checked; the real published files are passed by hand
(README, bench/results/published_numbers.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
SCRIPT = ROOT / "bench" / "published_numbers.py"
ANNOTATIONS = (
    DATA / "alpaca_eval" / "results" / "tiny-model" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
)
PAIRS = DATA / "mt_bench" / "model_judgment" / "gpt-4_pair.jsonl"

# Prints the same table as FastChat's show_result.py --mode pairwise-all: a groupby-sum DataFrame, with pandas'
# own layout (index name on its own line), FastChat's counting rule, and its added rate columns.
STAND_IN = """
import argparse, pandas as pd
p = argparse.ArgumentParser(); p.add_argument("--mode"); p.add_argument("--input-file"); a = p.parse_args()
df = pd.read_json(a.input_file, lines=True)
df = df[(df["g1_winner"] != "error") & (df["g2_winner"] != "error")]
rows = []
for _, r in df.iterrows():
    if r["g1_winner"] == "tie" or r["g1_winner"] != r["g2_winner"]:
        rows += [{"model": r["model_1"], "win": 0, "loss": 0, "tie": 1}, {"model": r["model_2"], "win": 0, "loss": 0, "tie": 1}]
    else:
        w, l = (r["model_1"], r["model_2"]) if r["g1_winner"] == "model_1" else (r["model_2"], r["model_1"])
        rows += [{"model": w, "win": 1, "loss": 0, "tie": 0}, {"model": l, "win": 0, "loss": 1, "tie": 0}]
t = pd.DataFrame(rows).groupby(["model"]).sum()
t["win_rate"] = t["win"] / (t["win"] + t["loss"] + t["tie"])
print("Mode: pairwise-all"); print("Input file: x"); print(t.sort_values(by="win_rate", ascending=False))
"""


def _leaderboard(tmp_path: Path, model: str, **changes: float) -> Path:
    """alpaca_eval's leaderboard arithmetic over the excerpt: 0 is the old draw (1.5), values outside [1, 2]
    (null, the excerpt's 2.5) are not preferences and are dropped, then 100 × mean / sem of preference − 1."""
    prefs = pd.Series([r["preference"] for r in json.loads(ANNOTATIONS.read_text())], dtype=float).replace(
        {0: 1.5}
    )
    prefs = prefs[(prefs >= 1) & (prefs <= 2)] - 1
    row = {
        "win_rate": prefs.mean() * 100, "standard_error": prefs.sem() * 100, "n_wins": int((prefs > 0.5).sum()),
        "n_wins_base": int((prefs < 0.5).sum()), "n_draws": int((prefs == 0.5).sum()), "n_total": len(prefs),
    }  # fmt: skip
    row["discrete_win_rate"] = (row["n_wins"] + row["n_draws"] / 2) / row["n_total"] * 100
    row.update(changes)
    path = tmp_path / "leaderboard.csv"
    pd.DataFrame([row], index=[model]).to_csv(path)
    return path


def _run(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(out.with_suffix(".json").read_text())


def test_alpaca_eval_row_matches_and_a_wrong_row_fails(tmp_path: Path) -> None:
    args = ["--alpaca-eval", str(ANNOTATIONS)]
    rc, report = _run(tmp_path, *args, str(_leaderboard(tmp_path, "tiny-model")), "tiny-model")
    checks = report["checks"]["AlpacaEval: tiny-model, leaderboard"]["checks"]
    assert rc == 0 and report["all_equal"], checks
    # the null and the out-of-range rows are skipped, as alpaca_eval drops them
    assert checks["n_total (n)"]["lima"] == 5
    assert report["git"]["commit"] and report["versions"]["lima"]

    rc, report = _run(tmp_path, *args, str(_leaderboard(tmp_path, "tiny-model", n_draws=0)), "tiny-model")
    assert (
        rc == 1
        and not report["checks"]["AlpacaEval: tiny-model, leaderboard"]["checks"]["n_draws (ties)"]["equal"]
    )


def test_fastchat_table_matches(tmp_path: Path) -> None:
    root = tmp_path / "fastchat_root"
    (root / "fastchat" / "llm_judge").mkdir(parents=True)
    (root / "fastchat" / "llm_judge" / "show_result.py").write_text(STAND_IN)
    rc, report = _run(tmp_path, "--fastchat-pair", str(PAIRS), "--fastchat-root", str(root))
    section = report["checks"]["FastChat MT-Bench"]
    assert rc == 0, section["checks"]
    assert section["fastchat_table"]["vicuna-tiny"] == {"win": 3, "loss": 1, "tie": 2}
    assert section["import"]["reparse"]["fastchat_rule_agrees"] == section["import"]["reparse"]["games"]
