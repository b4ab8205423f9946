"""`lima run` and `lima ablate`."""

from __future__ import annotations

from pathlib import Path

import typer


def run(
    config: Path = typer.Argument(..., help="An experiment config, e.g. configs/experiments/demo.yaml."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides (dotted), e.g. test_limit=10."),
    out: Path = typer.Option(None, "--out", help="Run directory (default: runs/<name>)."),
) -> None:
    """Curate → train → select checkpoint → generate → judge → report, in one run directory."""
    from lima.core.config import load_config
    from lima.pipeline.config import ExperimentConfig
    from lima.pipeline.run import run_experiment

    cfg = load_config(config, ExperimentConfig, overrides or [])
    result = run_experiment(cfg, out or Path("runs") / cfg.name, config_path=config)
    for name, summary in result.judgments.items():
        rate, ci = summary.get("win_rate"), summary.get("ci95") or (None, None)
        shown = (
            f"{rate:.1f}% (95% CI {ci[0]:.1f}–{ci[1]:.1f})" if rate is not None and None not in ci else "n/a"
        )
        typer.echo(f"model vs {name}: win rate {shown}, {summary.get('errors', 0)} judge errors")
        if summary.get("judge_agreement"):  # how far this judge can be trusted, beside its win rate
            typer.echo(f"  {summary['judge_agreement']}")
    typer.echo(f"report: {result.report_html}")


def ablate(
    config: Path = typer.Argument(..., help="An ablation config, e.g. configs/ablations/quality_demo.yaml."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides (dotted)."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: runs/ablate-<name>)."),
    arm: str = typer.Option(None, "--arm", help="Run only this arm (used when spreading arms over devices)."),
) -> None:
    """Run a diversity / quality / quantity ablation: one row per arm with a 95% CI, and a plot."""
    from lima.core.config import load_config
    from lima.pipeline.ablate import run_ablation
    from lima.pipeline.config import AblationConfig

    cfg = load_config(config, AblationConfig, overrides or [])
    out_dir = out or Path("runs") / f"ablate-{cfg.name}"
    rows = run_ablation(cfg, out_dir, config, only_arm=arm)
    for row in rows:
        typer.echo(f"{row['label']}: n={row['n']} mean={row['mean']} ci95={row['ci95']}")
    if arm is None:
        typer.echo(f"table: {out_dir / 'ablation.md'}  plot: {out_dir / 'ablation.png'}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("ablate")(ablate)
