"""Evaluation subcommands: ``generate``, ``judge``, ``grade``, ``agreement``, ``calibrate``, and the ecosystem
files: ``import``, ``export-generations``, ``summarize``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import typer

from lima.core.cli_util import lines_written, raise_on_sigterm, replies_cached
from lima.core.signals import on_interrupt

OVERRIDES = typer.Argument(None, help="key=value overrides, dotted for nested keys (endpoint.model=...).")
OVERWRITE = typer.Option(
    False,
    "--overwrite",
    help="Start --out again with these settings instead of resuming it (refused if they differ).",
)
DRY_RUN = typer.Option(
    False,
    "--dry-run",
    help="Send nothing: write every request (prompt_id, order or sample, the exact messages) to OUT/requests.jsonl "
    "and print the request count, the estimated prompt tokens and, where the endpoint config states prices, the cost.",
)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "run"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _echo_table(rows: dict[str, Any]) -> None:
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        typer.echo(f"{key:<{width}}  {_fmt(value)}")


def _echo_dry_run(totals: dict[str, Any], parse_retries: int) -> None:
    from lima.core.dry_run import describe

    typer.echo(describe(totals, Path(totals["requests_file"]), parse_retries))


def generate(
    config: Path = typer.Argument(..., help="A generate config, e.g. configs/generate/lima.yaml."),
    overrides: list[str] = OVERRIDES,
    model: str = typer.Option(None, "--model", help="Model spec or checkpoint dir (overrides the config)."),
    prompts: Path = typer.Option(None, "--prompts", help="Prompt file (overrides the config)."),
    out: Path = typer.Option(None, "--out", help="Output JSONL (default runs/generations/<model>.jsonl)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N prompts."),
    name: str = typer.Option(
        None,
        "--name",
        help="What reports, exports and charts call this model (default: short, from --model).",
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Generate decoding.samples responses per prompt (LIMA decoding by default); resumes an interrupted run."""
    from lima.core.config import load_config
    from lima.eval.config import GenerateConfig
    from lima.eval.generate import run_generation
    from lima.eval.resume_guard import guard_generate

    raise_on_sigterm()
    cfg = load_config(config, GenerateConfig, overrides or [])
    cfg = cfg.model_copy(update={"name": name}) if name else cfg
    out = out or Path("runs/generations") / f"{_slug(model or cfg.model)}.jsonl"
    on_interrupt(lambda: lines_written(out, "generations"))
    with guard_generate(cfg, out, model, overwrite):
        path = run_generation(cfg, out, model=model, prompts=prompts, limit=limit)
    typer.echo(f"generations: {path}")


def judge(
    config: Path = typer.Argument(..., help="A judge config, e.g. configs/judge/embedded_lima.yaml."),
    overrides: list[str] = OVERRIDES,
    a: Path = typer.Option(..., "--a", help="Generations of model A (the one whose win rate is reported)."),
    b: Path = typer.Option(..., "--b", help="Generations of model B (the baseline)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default runs/judge/<A>_vs_<B>)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N prompts."),
    overwrite: bool = OVERWRITE,
    dry_run: bool = DRY_RUN,
) -> None:
    """Judge A against B with an LLM, both orders per pair; prints win/tie/loss and the win rate."""
    from lima.core.config import load_config
    from lima.eval.config import JudgeConfig
    from lima.eval.judge import run_judging
    from lima.eval.resume_guard import guard_judge, warn_same_answers

    raise_on_sigterm()
    cfg = load_config(config, JudgeConfig, overrides or [])
    out = out or Path("runs/judge") / f"{_slug(a.stem)}_vs_{_slug(b.stem)}"
    if dry_run:
        _echo_dry_run(run_judging(cfg, a, b, out, limit=limit, dry_run=True), cfg.parse_retries)
        return
    on_interrupt(lambda: replies_cached(Path(cfg.cache) if cfg.cache else out / "judge_cache.sqlite"))
    warn_same_answers(a, b)
    with guard_judge(cfg, a, b, out, overwrite):
        summary = run_judging(cfg, a, b, out, limit=limit)
    from lima.eval.report import SUMMARY_KEYS

    _echo_table({k: summary[k] for k in SUMMARY_KEYS if k in summary})  # soft_win_rate: soft judges only
    client = summary["client"]
    typer.echo(
        f"requests {client['requests']}, cache hits {client['cache_hits']}, "
        f"tokens {client['prompt_tokens']}+{client['completion_tokens']}, cost ${client['cost_usd']:.4f}"
    )
    typer.echo(f"report: {out / 'report.html'}")
    if summary["errors"]:
        typer.echo(
            f"warning: {summary['errors']} prompt(s) without a verdict (unparseable replies or endpoint errors), "
            f"excluded; see {out / 'judgments.jsonl'}. A rerun resends only requests that failed.",
            err=True,
        )


def grade(
    config: Path = typer.Argument(..., help="A grade config, e.g. configs/grade/embedded_likert.yaml."),
    overrides: list[str] = OVERRIDES,
    gen: Path = typer.Option(..., "--gen", help="Generations to grade."),
    samples: int = typer.Option(None, "--samples", min=1, help="Judge samples per prompt (default: config)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default runs/grade/<GEN>)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N prompts."),
    overwrite: bool = OVERWRITE,
    dry_run: bool = DRY_RUN,
) -> None:
    """Grade single answers: Likert 1–6 helpfulness (LIMA's ablation metric, mean with a 95% CI), with
    scale: absolute LIMA's Fail / Pass / Excellent, or with scale: mt_bench FastChat's MT-Bench rating 1–10."""
    from lima.core.config import load_config
    from lima.eval.config import GradeConfig
    from lima.eval.grade import run_grading
    from lima.eval.resume_guard import guard_grade

    raise_on_sigterm()
    cfg = load_config(config, GradeConfig, overrides or [])
    out = out or Path("runs/grade") / _slug(gen.stem)
    if dry_run:
        _echo_dry_run(
            run_grading(cfg, gen, out, samples=samples, limit=limit, dry_run=True), cfg.parse_retries
        )
        return
    on_interrupt(lambda: replies_cached(Path(cfg.cache) if cfg.cache else out / "grade_cache.sqlite"))
    with guard_grade(cfg, gen, out, samples, overwrite):
        summary = run_grading(cfg, gen, out, samples=samples, limit=limit)
    keys = ("model", "n", "errors", "samples", "mean", "ci95")
    if summary.get("scale") == "absolute":
        keys = ("model", "n", "errors", "excellent_pct", "pass_pct", "fail_pct")
    _echo_table({k: summary.get(k) for k in keys})
    typer.echo(f"scores: {out / 'scores.jsonl'}")


def agreement(
    pred: Path = typer.Option(..., "--pred", help="JSONL with id and verdict (A, B or tie)."),
    gold: Path = typer.Option(
        ..., "--gold", help="JSONL with id and label (A, B or tie), optional category."
    ),
    pred_swapped: Path = typer.Option(
        None,
        "--pred-swapped",
        help="Predictions with the two responses swapped, in swapped-order terms (A = shown first there).",
    ),
    fmt: str = typer.Option(
        "lima", "--format", help="lima (id-keyed JSONL) or autoj (Auto-J test set and {output} lines)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Agreement of predicted verdicts with gold labels: accuracy, tie-discounted accuracy, κ, per category;
    with --pred-swapped also Auto-J's two-order agreement and consistency."""
    from lima.core.errors import LimaError
    from lima.eval.agreement import (
        agreement_report,
        check_line_counts,
        read_autoj,
        read_labels,
        two_order_report,
    )

    if fmt not in ("lima", "autoj"):
        raise LimaError(f"--format {fmt!r}: expected lima or autoj")
    paths = {"gold": gold, "pred": pred, **({"pred_swapped": pred_swapped} if pred_swapped else {})}
    if fmt == "autoj":
        rows = {
            name: read_autoj(path, "label" if name == "gold" else "output") for name, path in paths.items()
        }
        check_line_counts(paths, rows)
    else:
        rows = {
            name: read_labels(path, "label" if name == "gold" else "verdict") for name, path in paths.items()
        }
    report = agreement_report(rows["pred"], rows["gold"])
    extra = two_order_report(rows["pred"], rows["pred_swapped"], rows["gold"]) if pred_swapped else None
    _print_agreement(report, as_json, extra)


FORMAT_NAMES = "alpaca_eval, mt_bench, arena_hard or autoj"


def import_(
    fmt: str = typer.Argument(..., metavar="FORMAT", help=f"{FORMAT_NAMES}."),
    path: Path = typer.Argument(..., help="A prompt, answer or judgment file of that format."),
    out: Path = typer.Option(
        ..., "--out", help="lima JSONL to write (prompt records, generations or judgments)."
    ),
    kind: str = typer.Option(
        None, "--kind", help="prompts, answers, judgments (Auto-J: labels, predictions)."
    ),
    questions: Path = typer.Option(
        None, "--questions", help="question.jsonl for answer/judgment files that carry no question text."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object."),
) -> None:
    """Convert an AlpacaEval, MT-Bench, Arena-Hard or Auto-J file into lima's own JSONL (kind detected)."""
    from lima.eval.formats import import_file, write_import

    result = import_file(fmt, path, kind, questions)
    write_import(result, out)
    counts = result.counts()
    if as_json:
        typer.echo(json.dumps({**counts, "out": str(out)}))
    else:
        typer.echo(
            f"{fmt} {result.kind}: {len(result.lines)} converted, {len(result.skipped)} skipped -> {out}"
        )
        for key, value in counts.items():
            if key not in ("format", "kind", "converted", "skipped", "skipped_by_reason"):
                typer.echo(f"{key}: {json.dumps(value)}")
    for where, reason in result.skipped[:20]:
        typer.echo(f"skipped {where}: {reason}", err=True)
    if len(result.skipped) > 20:
        typer.echo(f"… and {len(result.skipped) - 20} more: {counts['skipped_by_reason']}", err=True)


def export_generations(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="alpaca_eval, mt_bench or arena_hard."),
    gen: Path = typer.Argument(
        ..., help="lima generations (or prompt records, or judgments) to write in that format."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="model_outputs.json (AlpacaEval) or model_answer/<model>.jsonl (FastChat, Arena-Hard).",
    ),
) -> None:
    """Write lima generations as AlpacaEval, FastChat or Arena-Hard answers, so those tools can judge them
    (also prompt records and judgments). `lima export` merges adapters into a model; this exports generations."""
    from lima.eval.formats import export_file

    what, count = export_file(fmt, gen, out)
    typer.echo(f"{count} {fmt} {what} row(s) -> {out}")


def summarize(
    judgments: Path = typer.Argument(..., help="A judgments JSONL (`lima judge`'s or `lima import`'s)."),
    baseline: str = typer.Option(
        None, "--baseline", help="Only pairs with this model, oriented so that it is model B."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=10, help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ae_difficulty: Path = typer.Option(
        None,
        "--alpaca-eval-difficulty",
        help="AlpacaEval 2's instruction_difficulty.csv (index,instruction_difficulty): adds AlpacaEval's own "
        "LC win rate, its GLM without the gamed baselines (alpaca_eval_lc_noreg_win_rate) unless "
        "--alpaca-eval-gamed is given too. Download it from the Hugging Face dataset tatsu-lab/alpaca_eval.",
    ),
    ae_gamed: Path = typer.Option(
        None,
        "--alpaca-eval-gamed",
        help="AlpacaEval 2's df_gamed.csv (the same dataset, tatsu-lab/alpaca_eval on the Hugging Face hub): "
        "adds the leaderboard's length-controlled win rate, alpaca_eval_lc_win_rate (its difficulty is read "
        "from this file, as AlpacaEval does).",
    ),
) -> None:
    """Win/tie/loss, win rate with standard error and 95% CI (soft and Arena-Hard scores when present), and
    AlpacaEval 2's length-controlled win rate given its files."""
    from lima.eval.alpaca_eval_lc import read_difficulty, read_gamed
    from lima.eval.summary import summarize_file

    difficulty = read_difficulty(ae_difficulty) if ae_difficulty is not None else None
    gamed = read_gamed(ae_gamed) if ae_gamed is not None else None
    result = summarize_file(judgments, baseline, bootstrap, seed, difficulty, gamed)
    if as_json:
        typer.echo(json.dumps(result))
        return
    for pair in result.get("pairs", [result]):
        _echo_table({k: v for k, v in pair.items() if v is not None and v != [None, None]})
        typer.echo("")


def _print_agreement(report: dict[str, Any], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        typer.echo(json.dumps({**report, **(extra or {})}, default=str))
        return
    overall = {k: v for k, v in report.items() if k != "per_category"}
    _echo_table({**overall, **(extra or {})})
    if report.get("per_category"):
        typer.echo("\nper category:")
        typer.echo(f"{'category':<28} {'n':>5} {'acc':>7} {'tie-disc':>9} {'kappa':>7}")
        for name, row in report["per_category"].items():
            typer.echo(
                f"{name[:28]:<28} {row['n']:>5} {_fmt(row['accuracy']):>7} "
                f"{_fmt(row['tie_discounted_accuracy']):>9} {_fmt(row['cohen_kappa']):>7}"
            )


def calibrate(
    config: Path = typer.Argument(..., help="A judge config."),
    overrides: list[str] = OVERRIDES,
    labels: Path = typer.Option(..., "--labels", help="Human-labelled pairwise set."),
    fmt: str = typer.Option(
        ..., "--format", help="lima (data/judge_pairs.jsonl), llmbar, pandalm, autoj or mtbench."
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    out: Path = typer.Option(None, "--out", help="Output folder (default runs/calibrate/<labels>-<config>)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run a judge over human-labelled pairs: agreement, position consistency and length bias."""
    from lima.core.config import load_config
    from lima.eval.calibrate import run_calibration
    from lima.eval.config import JudgeConfig

    raise_on_sigterm()
    cfg = load_config(config, JudgeConfig, overrides or [])
    from lima.core.outputs import check_out_dir

    out = check_out_dir(out or Path("runs/calibrate") / f"{_slug(labels.stem)}-{_slug(config.stem)}")
    result = run_calibration(cfg, labels, fmt, out, limit=limit)
    _print_agreement(result["agreement"], as_json, {k: v for k, v in result.items() if k != "agreement"})


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("judge")(judge)
    app.command("grade")(grade)
    app.command("agreement")(agreement)
    app.command("calibrate")(calibrate)
    app.command("import")(import_)
    app.command("export-generations")(export_generations)
    app.command("summarize")(summarize)
