"""Evaluation subcommands: ``generate``, ``judge``, ``grade``, ``agreement``, ``calibrate``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import typer

from lima.core.cli_util import raise_on_sigterm

OVERRIDES = typer.Argument(None, help="key=value overrides, dotted for nested keys (endpoint.model=...).")


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


def generate(
    config: Path = typer.Argument(..., help="A generate config, e.g. configs/generate/lima.yaml."),
    overrides: list[str] = OVERRIDES,
    model: str = typer.Option(None, "--model", help="Model spec or checkpoint dir (overrides the config)."),
    prompts: Path = typer.Option(None, "--prompts", help="Prompt file (overrides the config)."),
    out: Path = typer.Option(None, "--out", help="Output JSONL (default runs/generations/<model>.jsonl)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N prompts."),
) -> None:
    """Generate one response per prompt (LIMA decoding by default); resumes an interrupted run."""
    from lima.core.config import load_config
    from lima.eval.config import GenerateConfig
    from lima.eval.generate import run_generation

    raise_on_sigterm()
    cfg = load_config(config, GenerateConfig, overrides or [])
    out = out or Path("runs/generations") / f"{_slug(model or cfg.model)}.jsonl"
    path = run_generation(cfg, out, model=model, prompts=prompts, limit=limit)
    typer.echo(f"generations: {path}")


def judge(
    config: Path = typer.Argument(..., help="A judge config, e.g. configs/judge/embedded_lima.yaml."),
    overrides: list[str] = OVERRIDES,
    a: Path = typer.Option(..., "--a", help="Generations of model A (the one whose win rate is reported)."),
    b: Path = typer.Option(..., "--b", help="Generations of model B (the baseline)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default runs/judge/<A>_vs_<B>)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N prompts."),
) -> None:
    """Judge A against B with an LLM, both orders per pair; prints win/tie/loss and the win rate."""
    from lima.core.config import load_config
    from lima.eval.config import JudgeConfig
    from lima.eval.judge import run_judging

    raise_on_sigterm()
    cfg = load_config(config, JudgeConfig, overrides or [])
    out = out or Path("runs/judge") / f"{_slug(a.stem)}_vs_{_slug(b.stem)}"
    summary = run_judging(cfg, a, b, out, limit=limit)
    from lima.eval.report import SUMMARY_KEYS

    _echo_table({k: summary[k] for k in SUMMARY_KEYS})
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
) -> None:
    """Likert 1–6 helpfulness of single answers (LIMA's ablation metric): mean with a 95% CI."""
    from lima.core.config import load_config
    from lima.eval.config import GradeConfig
    from lima.eval.grade import run_grading

    raise_on_sigterm()
    cfg = load_config(config, GradeConfig, overrides or [])
    out = out or Path("runs/grade") / _slug(gen.stem)
    summary = run_grading(cfg, gen, out, samples=samples, limit=limit)
    _echo_table({k: summary[k] for k in ("model", "n", "errors", "samples", "mean", "ci95")})
    typer.echo(f"scores: {out / 'scores.jsonl'}")


def agreement(
    pred: Path = typer.Option(..., "--pred", help="JSONL with id and verdict (A, B or tie)."),
    gold: Path = typer.Option(
        ..., "--gold", help="JSONL with id and label (A, B or tie), optional category."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Agreement of predicted verdicts with gold labels: accuracy, tie-discounted accuracy, κ, per category."""
    from lima.eval.agreement import agreement_report, read_labels

    report = agreement_report(read_labels(pred, "verdict"), read_labels(gold, "label"))
    _print_agreement(report, as_json)


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
    fmt: str = typer.Option(..., "--format", help="llmbar, pandalm, autoj or mtbench."),
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
    out = out or Path("runs/calibrate") / f"{_slug(labels.stem)}-{_slug(config.stem)}"
    result = run_calibration(cfg, labels, fmt, out, limit=limit)
    _print_agreement(result["agreement"], as_json, {k: v for k, v in result.items() if k != "agreement"})


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("judge")(judge)
    app.command("grade")(grade)
    app.command("agreement")(agreement)
    app.command("calibrate")(calibrate)
