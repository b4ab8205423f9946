"""`lima run` and `lima ablate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lima.core.signals import on_interrupt


def finished_stages(run_dir: Path) -> str:
    """'finished stages: curate, train' (of this run or, for an ablation, of every arm)."""
    from lima.pipeline.stages import MARKER

    done = []
    for marker in sorted(run_dir.rglob(MARKER)):
        try:
            complete = json.loads(marker.read_text()).get("complete")
        except (OSError, ValueError):
            complete = False
        if complete:
            done.append(str(marker.parent.relative_to(run_dir)))
    return f"finished stages in {run_dir}: {', '.join(done)}" if done else ""


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
    out_dir = out or Path("runs") / cfg.name
    on_interrupt(lambda: finished_stages(out_dir))
    result = run_experiment(cfg, out_dir, config_path=config)
    if getattr(result, "changes", None):  # the measurements that need no judge come first
        from lima.pipeline.changes import summary_lines

        typer.echo("what fine-tuning changed:")
        for line in summary_lines(result.changes):
            typer.echo(f"  {line}")
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
    on_interrupt(lambda: finished_stages(out_dir / "arms" / arm if arm else out_dir))
    rows = run_ablation(cfg, out_dir, config, only_arm=arm)
    from lima.pipeline.ablate import arm_line

    for row in rows:
        typer.echo(arm_line(row))
    if arm is None:
        typer.echo(f"table: {out_dir / 'ablation.md'}  plot: {out_dir / 'ablation.png'}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("ablate")(ablate)
