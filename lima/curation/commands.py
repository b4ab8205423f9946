"""``lima curate``."""

from __future__ import annotations

from pathlib import Path

import typer


def curate(
    config: Path = typer.Argument(..., help="A curate config, e.g. configs/curate/demo.yaml."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, dotted for nested keys."),
    inputs: list[Path] = typer.Option(
        None, "--input", "-i", help="A dump file or folder (repeatable); replaces the config's inputs."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: runs/curate/<config name>)."),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Exit 2 when the train set misses a whole group that selection.quotas asks for.",
    ),
) -> None:
    """Curate dumps (Stack Exchange, wikiHow, Reddit, JSONL sets) into a LIMA-style train/dev set with a report."""
    from lima.core.cli_util import files_matching, raise_on_sigterm
    from lima.core.config import load_config
    from lima.core.errors import LimaError
    from lima.core.lock import LOCK_NAME, OutputLock
    from lima.core.outputs import check_out_dir
    from lima.core.signals import on_interrupt
    from lima.curation.config import CurateConfig
    from lima.curation.report import dev_cap_note, dev_short_note
    from lima.curation.run import run_curation
    from lima.curation.shortfall import MIX_HEADER, missing_groups, mix_rows, shortfall_lines, text_table

    raise_on_sigterm()
    resolved = load_config(config, CurateConfig, overrides or [])
    out_dir = check_out_dir(out or Path("runs") / "curate" / config.stem)
    on_interrupt(lambda: files_matching(out_dir / "shards", "*/.done", "finished shards"))
    with OutputLock(out_dir / LOCK_NAME, f"--out {out_dir}"):
        result = run_curation(resolved, out_dir, list(inputs) if inputs else None)
    counts = result.counts
    typer.echo(f"train: {counts['train']} examples -> {result.train_path}")
    if result.dev_path is not None:
        typer.echo(f"dev:   {counts['dev']} examples -> {result.dev_path}")
    if "dev_capped" in counts:
        typer.echo(f"note:  {dev_cap_note(counts['dev_capped'])}")
    if "dev_short" in counts:
        typer.echo(f"note:  {dev_short_note(counts['dev_short'])}")
    if "scaled_quotas" in counts:
        scaled = ", ".join(f"{g} {n}" for g, n in counts["scaled_quotas"].items())
        typer.echo(f"note:  quotas scaled to keep their proportions (selection.scale_quotas): {scaled}")
    typer.echo("mix:")
    typer.echo("\n".join(text_table(MIX_HEADER, mix_rows(counts, counts["pass_through"]))))
    dropped = ", ".join(f"{r} {n}" for r, n in list(counts["reasons"].items())[:8])
    typer.echo(f"dropped: {dropped or 'none'}")
    typer.echo(f"report: {result.report_html}")
    warning = shortfall_lines(counts)
    if warning:
        typer.echo("\n".join(warning), err=True)
    missing = missing_groups(counts)
    if strict and missing:
        raise LimaError(
            f"--strict: the train set has no examples of {', '.join(missing)} (see the warning above)"
        )


def register(app: typer.Typer) -> None:
    app.command("curate")(curate)
