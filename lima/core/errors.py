"""User-facing errors: the CLI prints their message (no traceback) and exits with their code."""

from __future__ import annotations


class LimaError(Exception):
    """An error caused by the user's input or environment, with a message that says how to fix it."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(LimaError):
    """A config file or override is invalid; the message lists every problem found."""


class RecordError(LimaError):
    """A data file holds a record that is not valid; the message names file, line and field."""


class ModelResolutionError(LimaError):
    """A model spec cannot be resolved or loaded."""
