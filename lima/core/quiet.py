"""Quiet by default: third-party notices that tell a lima user nothing are filtered; ``lima -v`` shows them.

Filtered: deprecation and future warnings (they are about library internals or our own calls, and are for us
to fix, not for the user to act on), transformers' advisory notices, and bitsandbytes' notice that its
"kernels-community" kernels need ``trust_remote_code``. Child Python processes (the judge server, torchrun
ranks) inherit the warning filters through ``PYTHONWARNINGS``; ``LIMA_VERBOSE=1`` turns it all off.
"""

from __future__ import annotations

import logging
import os
import warnings

_NOTICES = (r".*kernels-community.*", r".*trust_remote_code.*kernels.*")
_CATEGORIES = ("FutureWarning", "DeprecationWarning", "PendingDeprecationWarning")
# Logged notices with nothing for the user to do, and the loggers that emit them.
_LOGGED = ("kernels-community", "mtime may not be reliable")
_LOGGERS = ("bitsandbytes.backends.cpu.ops", "bitsandbytes", "kernels", "transformers.trainer_utils")


class _DropNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _LOGGED)


def quiet_third_party(verbose: bool = False) -> None:
    """Install the filters (or, verbose, leave every notice on, in child processes too)."""
    if verbose or os.environ.get("LIMA_VERBOSE"):
        os.environ["LIMA_VERBOSE"] = "1"
        return
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    for pattern in _NOTICES:
        warnings.filterwarnings("ignore", message=pattern)
    inherited = os.environ.get("PYTHONWARNINGS", "")
    ours = ",".join(f"ignore::{name}" for name in _CATEGORIES)
    if ours not in inherited:
        os.environ["PYTHONWARNINGS"] = f"{inherited},{ours}" if inherited else ours
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    notice_filter = _DropNotices()
    for name in _LOGGERS:  # a logger's filter sees the records made on it (not those its children pass up)
        logging.getLogger(name).addFilter(notice_filter)
    if logging.lastResort is not None:  # what prints a library's warning when nobody configured logging
        logging.lastResort.addFilter(notice_filter)
