"""Does `lima summarize` give the ecosystem's own published numbers on the ecosystem's own files?

    .venv/bin/python bench/published_numbers.py \
        --alpaca-eval results/text_davinci_001/alpaca_eval_gpt4/annotations.json \
                      src/alpaca_eval/leaderboards/data_AlpacaEval/alpaca_eval_gpt4_leaderboard.csv text_davinci_001 \
        --fastchat-pair data/mt_bench/model_judgment/gpt-4_pair.jsonl \
        --fastchat-root DIR   # a FastChat checkout or the unpacked `fschat` wheel (fastchat/llm_judge/show_result.py)

Each check goes through the real CLI, `lima import FORMAT FILE --out J --json` then `lima summarize J --json`,
and sets lima's numbers beside the anchor's:
- AlpacaEval: the model's row of the leaderboard CSV that alpaca_eval publishes (win_rate, standard_error,
  n_wins, n_wins_base, n_draws, n_total) against lima's soft_win_rate, soft_standard_error, wins, losses, ties, n;
- FastChat: the table its own `show_result.py --mode pairwise-all` prints for the same file (run here as a
  subprocess) against lima's win/loss/tie per model, and lima's parsers re-run over the stored judgment texts.
The real files are third-party data: pass their paths; nothing of them is copied into the project.
Writes bench/results/published_numbers.{json,md} (with git commit and versions).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lima.core.manifest import describe_inputs, git_info, package_versions  # noqa: E402

LIMA = [sys.executable, "-m", "lima"]


def _lima_json(*args: str) -> dict[str, Any]:
    done = subprocess.run([*LIMA, *args, "--json"], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"lima {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same(ours: float | int | None, theirs: float | int) -> dict[str, Any]:
    diff = None if ours is None else abs(float(ours) - float(theirs))
    # equal to the last few bits: pandas and numpy may sum floats in another order
    return {"lima": ours, "published": theirs, "abs_diff": diff, "identical": diff == 0.0,
            "equal": diff is not None and diff <= 1e-12 * max(1.0, abs(float(theirs)))}  # fmt: skip


def leaderboard_row(path: Path, model: str) -> dict[str, float]:
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("") == model or row.get("name") == model:
                return {k: float(v) for k, v in row.items() if k and v and _is_number(v)}
    raise SystemExit(f"{path}: no row for model {model!r}")


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def check_alpaca_eval(annotations: Path, leaderboard: Path, model: str, work: Path) -> dict[str, Any]:
    out = work / f"alpaca_eval-{model}-{leaderboard.stem}.jsonl"
    imported = _lima_json("import", "alpaca_eval", str(annotations.resolve()), "--out", str(out))
    summary = _lima_json("summarize", str(out))
    row = leaderboard_row(leaderboard, model)
    checks = {
        "win_rate (soft_win_rate)": _same(summary["soft_win_rate"], row["win_rate"]),
        "standard_error (soft_standard_error)": _same(summary["soft_standard_error"], row["standard_error"]),
        "n_wins (wins)": _same(summary["wins"], row["n_wins"]),
        "n_wins_base (losses)": _same(summary["losses"], row["n_wins_base"]),
        "n_draws (ties)": _same(summary["ties"], row["n_draws"]),
        "n_total (n)": _same(summary["n"], row["n_total"]),
    }
    if "discrete_win_rate" in row:
        checks["discrete_win_rate (win_rate)"] = _same(summary["win_rate"], row["discrete_win_rate"])
    return {"import": imported, "leaderboard_row": row, "checks": checks}


def fastchat_table(pair_file: Path, fastchat_root: Path) -> dict[str, dict[str, int]]:
    """FastChat's own `show_result.py --mode pairwise-all` table for the file: model -> win, loss, tie."""
    script = fastchat_root / "fastchat" / "llm_judge" / "show_result.py"
    done = subprocess.run(
        [sys.executable, str(script), "--mode", "pairwise-all", "--input-file", str(pair_file.resolve())],
        capture_output=True, text=True, cwd=fastchat_root,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stderr}")
    table: dict[str, dict[str, int]] = {}
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["win", "loss", "tie"])
    for line in lines[header + 2 :]:  # after the header and pandas' index-name line
        parts = line.split()
        if len(parts) >= 4:
            table[parts[0]] = {"win": int(parts[1]), "loss": int(parts[2]), "tie": int(parts[3])}
    return table


def check_fastchat(pair_file: Path, fastchat_root: Path, work: Path) -> dict[str, Any]:
    out = work / "mt_bench.jsonl"
    imported = _lima_json("import", "mt_bench", str(pair_file.resolve()), "--out", str(out))
    summary = _lima_json("summarize", str(out))
    ours: dict[str, dict[str, int]] = defaultdict(lambda: {"win": 0, "loss": 0, "tie": 0})
    for pair in summary.get("pairs", [summary]):
        a, b = pair["model_a"], pair["model_b"]
        for model, win, loss in ((a, pair["wins"], pair["losses"]), (b, pair["losses"], pair["wins"])):
            ours[model]["win"] += win
            ours[model]["loss"] += loss
            ours[model]["tie"] += pair["ties"]
    theirs = fastchat_table(pair_file, fastchat_root)
    checks = {
        f"{model} {key}": _same(ours.get(model, {}).get(key), counts[key])
        for model, counts in sorted(theirs.items())
        for key in ("win", "loss", "tie")
    }
    return {"import": imported, "fastchat_table": theirs, "lima": dict(ours), "checks": checks}


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# lima summarize against the ecosystem's published numbers", ""]
    lines += [f"- git: `{report['git'].get('commit')}`", f"- inputs: {json.dumps(report['inputs'])}", ""]
    for name, section in report["checks"].items():
        imported = section["import"]
        lines += [
            f"## {name}",
            "",
            f"`lima import`: {imported['converted']} converted, {imported['skipped']} skipped "
            f"{json.dumps(imported['skipped_by_reason'])}",
            "",
            "| quantity | lima | published | equal (to 1e-12 relative) |",
            "|---|---|---|---|",
        ]
        for key, c in section["checks"].items():
            same = (
                ("yes, identical" if c["identical"] else f"yes, differs by {c['abs_diff']:.1e}")
                if c["equal"]
                else "**no**"
            )
            lines.append(f"| {key} | {c['lima']} | {c['published']} | {same} |")
        reparse = imported.get("reparse")
        if reparse:
            lines += ["", f"lima's parsers over the stored judgment texts: {json.dumps(reparse)}"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--alpaca-eval",
        nargs=3,
        action="append",
        default=[],
        metavar=("ANNOTATIONS", "LEADERBOARD_CSV", "MODEL"),
        help="an annotations.json, the alpaca_eval leaderboard CSV holding its model, the model's row name",
    )
    parser.add_argument("--fastchat-pair", type=Path, help="a FastChat model_judgment/*_pair.jsonl")
    parser.add_argument("--fastchat-root", type=Path, help="where fastchat/llm_judge/show_result.py is")
    parser.add_argument("--note", default="", help="how the input files were obtained (kept in the report)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "published_numbers")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "git": git_info(),
        "versions": package_versions(),
        "note": args.note,
        "checks": {},
    }
    inputs = [Path(p) for ann, csv_path, _ in args.alpaca_eval for p in (ann, csv_path)]
    inputs += [args.fastchat_pair] if args.fastchat_pair else []
    report["inputs"] = [{**d, "path": Path(d["path"]).name} for d in describe_inputs(inputs)]
    with tempfile.TemporaryDirectory() as tmp:
        for annotations, leaderboard, model in args.alpaca_eval:
            name = f"AlpacaEval: {model}, {Path(leaderboard).stem}"
            report["checks"][name] = check_alpaca_eval(Path(annotations), Path(leaderboard), model, Path(tmp))
        if args.fastchat_pair:
            if not args.fastchat_root:
                parser.error("--fastchat-pair needs --fastchat-root")
            report["checks"]["FastChat MT-Bench"] = check_fastchat(
                args.fastchat_pair, args.fastchat_root, Path(tmp)
            )
    if not report["checks"]:
        parser.error("nothing to check: give --alpaca-eval and/or --fastchat-pair")
    all_equal = all(c["equal"] for s in report["checks"].values() for c in s["checks"].values())
    report["all_equal"] = all_equal
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    markdown = _markdown(report) + (f"\n{args.note}\n" if args.note else "")
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)
    sys.exit(0 if all_equal else 1)


if __name__ == "__main__":
    main()
