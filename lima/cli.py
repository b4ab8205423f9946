"""The ``lima`` command. Each stage registers its own subcommands from ``lima/<stage>/commands.py``.

Only commands that work are listed: a stage without a ``commands`` module adds nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from lima import __version__
from lima.core.errors import LimaError

app = typer.Typer(
    name="lima",
    help="LIMA-style alignment: curate ~1,000 examples, fine-tune, judge with an LLM, run ablations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

COMMAND_MODULES = ("lima.core.commands", "lima.curation.commands", "lima.finetune.commands",
                   "lima.eval.commands", "lima.pipeline.commands")  # fmt: skip


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lima {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show third-party notices and deprecation warnings (hidden by default)."
    ),
) -> None:
    """LIMA-style alignment toolkit."""
    from lima.core.quiet import quiet_third_party

    quiet_third_party(verbose)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name).register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one clear message and exit with their code, no traceback."""
    try:
        app(args=argv, prog_name="lima")
    except LimaError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
