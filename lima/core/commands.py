"""Core subcommands: ``validate``, ``serve-judge``, ``doctor``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
import yaml

from lima.core.cli_util import raise_on_sigterm
from lima.core.config import SCHEMAS, config_to_dict, kind_of_path, load_config, schema_for_kind
from lima.core.errors import ConfigError
from lima.core.models import DEFAULT_MODEL


def validate(
    config: Path = typer.Argument(..., help="A YAML config, e.g. configs/train/demo.yaml."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, dotted for nested keys."),
    kind: str = typer.Option(
        None, "--kind", help=f"Config kind when the folder does not say: {', '.join(SCHEMAS)}."
    ),
) -> None:
    """Validate a config (with overrides) and print it resolved, with every default filled in."""
    kind = kind or kind_of_path(config)
    if kind is None:
        raise ConfigError(
            f"{config}: cannot tell the config kind from its folder; pass --kind ({', '.join(SCHEMAS)})"
        )
    resolved = load_config(config, schema_for_kind(kind), overrides or [])
    if hasattr(resolved, "check_stages"):  # experiments and ablations: validate the stage configs they name
        resolved.check_stages(config)
    typer.echo(yaml.safe_dump(config_to_dict(resolved), sort_keys=False, allow_unicode=True), nl=False)


def serve_judge(
    model: str = typer.Option(DEFAULT_MODEL, "--model", help="A GGUF file or embedded:NAME."),
    port: int = typer.Option(None, "--port", help="Port on 127.0.0.1 (default: a free one)."),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="Context length."),
) -> None:
    """Serve the embedded judge as an OpenAI-compatible endpoint on 127.0.0.1 until Ctrl-C."""
    from lima.core.judge_server import JudgeServer

    raise_on_sigterm()
    server = JudgeServer(model=model, port=port, n_ctx=n_ctx)
    try:
        server.start()
        typer.echo(f"base_url: {server.base_url}")
        typer.echo(f"model: {server.alias}")
        typer.echo(f"pid: {server.pid}  (Ctrl-C stops it)", err=True)
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def doctor(
    skip_server: bool = typer.Option(False, "--skip-server", help="Do not start the judge server."),
    skip_model: bool = typer.Option(False, "--skip-model", help="Do not load the embedded model."),
) -> None:
    """Check this machine: versions, CUDA/bf16, embedded model, judge server, shared data, disk."""
    from lima.core.doctor import print_report, run_checks

    checks = run_checks(load_model=not skip_model, start_server=not skip_server)
    usable = print_report(checks)
    raise typer.Exit(0 if usable else 1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("serve-judge")(serve_judge)
    app.command("doctor")(doctor)
