"""AlpacaEval 2's length-controlled win rate: lima's (``lima.eval.alpaca_eval_lc``) beside alpaca_eval's own
``get_length_controlled_winrate`` on synthetic sets of AlpacaEval's size (805 instructions, two gamed baselines:
the generator of ``tests/eval/test_alpaca_eval_lc.py``), with the time each takes, and lima's own
``length_adjusted_win_rate`` on the same rows for comparison.

    .venv/bin/python bench/alpaca_eval_lc.py [--seeds 5] [--repeats 3]

Needs the ``anchors`` extra (alpaca-eval). Writes bench/results/alpaca_eval_lc.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lima.eval.metrics import length_adjusted_win_rate  # noqa: E402
from tests.eval.test_alpaca_eval_lc import anchor_lc, lima_lc, synthetic, write_files  # noqa: E402

CASES = {
    "soft": {},
    "soft, 40 ties, 7 failed": {"ties": 40, "nulls": 7},
    "discrete verdicts": {"discrete": True},
}


def _best(fn: Any, repeats: int) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, kwargs in CASES.items():
            for seed in range(args.seeds):
                annotations, gamed, difficulty = synthetic(seed=seed, **kwargs)
                gamed_csv, difficulty_csv = write_files(Path(tmp), gamed, difficulty)
                theirs, t_theirs = _best(
                    lambda a=annotations, g=gamed_csv: anchor_lc(a, g, "length_controlled_v1"), args.repeats
                )
                ours, t_ours = _best(
                    lambda a=annotations, g=gamed_csv, d=difficulty_csv: lima_lc(a, g, d), args.repeats
                )
                ok = annotations["preference"].notna()
                own = 100 * length_adjusted_win_rate(
                    (annotations["preference"][ok] - 1).tolist(),
                    annotations["output_2"][ok].str.len().tolist(),
                    annotations["output_1"][ok].str.len().tolist(),
                )
                rows.append(
                    {
                        "case": case,
                        "seed": seed,
                        "soft_win_rate": float(theirs["win_rate"]),
                        "alpaca_eval_lc": float(theirs["length_controlled_winrate"]),
                        "lima_alpaca_eval_lc": ours["alpaca_eval_lc_win_rate"],
                        "difference": ours["alpaca_eval_lc_win_rate"]
                        - float(theirs["length_controlled_winrate"]),
                        "lima_length_adjusted": own,
                        "seconds_alpaca_eval": t_theirs,
                        "seconds_lima": t_ours,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    import sklearn

    report = {
        "rows": rows,
        "max_abs_difference": max(abs(r["difference"]) for r in rows),
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    out = ROOT / "bench" / "results" / "alpaca_eval_lc"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# AlpacaEval 2 LC: lima vs alpaca_eval's own GLM (805 synthetic instructions)",
        "",
        f"scikit-learn {report['sklearn']}, Python {report['python']}; times: best of {args.repeats}, "
        "each including reading the CSV files.",
        "",
        "| case | seed | soft win rate | alpaca_eval LC | lima LC | difference | lima's own length-adjusted "
        "| s alpaca_eval | s lima |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['seed']} | {r['soft_win_rate']:.4f} | {r['alpaca_eval_lc']!r} | "
            f"{r['lima_alpaca_eval_lc']!r} | {r['difference']:.1e} | {r['lima_length_adjusted']:.4f} | "
            f"{r['seconds_alpaca_eval']:.3f} | {r['seconds_lima']:.3f} |"
        )
    lines += ["", f"Largest |difference|: {report['max_abs_difference']:.1e}", ""]
    out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
