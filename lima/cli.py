"""The ``lima`` command. Each stage registers its own subcommands from ``lima/<stage>/commands.py``.

Only commands that work are listed: a stage without a ``commands`` module adds nothing.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import typer

from lima import __version__
from lima.core.errors import LimaError
from lima.core.signals import (
    exit_code_for,
    install_stop_handlers,
    interruption_message,
    reset_interrupt_notes,
    watch_parent,
)

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
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Show third-party notices and deprecation warnings (hidden by default).",
    ),
) -> None:
    """LIMA-style alignment toolkit."""
    from lima.core.quiet import quiet_third_party

    quiet_third_party(verbose)


def _close_progress_bars() -> None:
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        with contextlib.suppress(Exception):
            bar.close()


def _speaking_interrupts(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Ctrl-C / SIGTERM in any command: one line saying what finished and how to resume; exit 130 / 143.

    Caught here, inside the command, because click would turn it into "Aborted!" and exit 1.
    """

    @functools.wraps(callback)
    def run_command(*args: Any, **kwargs: Any) -> Any:
        reset_interrupt_notes()
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt as exc:
            _close_progress_bars()  # else a bar redraws itself under the message when it is collected
            typer.echo(interruption_message(exc), err=True)
            raise typer.Exit(exit_code_for(exc)) from None

    return run_command


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name).register(app)
    for info in app.registered_commands:
        info.callback = _speaking_interrupts(info.callback)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one clear message and exit with their code, no traceback.

    Ctrl-C and SIGTERM are handled whatever disposition this process inherited (a background job starts with
    SIGINT ignored), and a child started by another lima process exits when that parent dies.
    """
    watch_parent()
    install_stop_handlers()
    try:
        app(args=argv, prog_name="lima")
    except LimaError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
