"""GBNF grammars are checked before they reach a llama.cpp server.

llama-cpp-python's server hands a request's ``grammar`` to llama.cpp unchecked; when llama.cpp's parser
rejects it, the sampler it returns is NULL and the server process dies with SIGSEGV, taking every other
request with it. So a grammar is parsed first by llama.cpp's own parser in a throw-away subprocess (a crash
there costs nothing), and a rejected one becomes a :class:`LimaError` that names the config field.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

from lima.core.errors import LimaError

# Parses stdin with llama.cpp's grammar parser (vocab-less: parsing needs no model); exit 0 = valid.
_CHECK = """
import sys
import llama_cpp
sampler = llama_cpp.llama_sampler_init_grammar(None, sys.stdin.buffer.read(), b"root")
if not sampler:
    sys.exit(3)
llama_cpp.llama_sampler_free(sampler)
"""


def _valid_marker(grammar: str) -> Path:
    """A file that records that this llama.cpp build parsed this grammar (so each run need not re-check)."""
    from importlib.metadata import version

    from lima.core.models import cache_dir

    key = hashlib.sha256(f"{version('llama_cpp_python')}\0{grammar}".encode()).hexdigest()
    return cache_dir() / "gbnf" / f"{key}.ok"


@functools.lru_cache(maxsize=256)
def _check(grammar: str) -> tuple[int, str]:
    marker = _valid_marker(grammar)
    if marker.is_file():
        return (0, "")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHECK],
            input=grammar.encode("utf-8"),
            capture_output=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return (-1, "the grammar check timed out")
    if done.returncode == 0:
        with contextlib.suppress(OSError):
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    return (done.returncode, done.stderr.decode("utf-8", "replace"))


def grammar_problem(grammar: str) -> str | None:
    """Why llama.cpp rejects ``grammar`` (its parser's words), or None when it parses."""
    if not grammar.strip():
        return "the grammar is empty"
    if importlib.util.find_spec("llama_cpp") is None:
        return None  # nothing to check with here; a remote llama.cpp server still needs a valid grammar
    code, stderr = _check(grammar)
    if code == 0:
        return None
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = [line for line in lines if "pars" in line.lower() or "error" in line.lower()] or lines[-2:]
    how = "rejected by llama.cpp's parser" if code == 3 else f"crashed llama.cpp's parser (exit {code})"
    return how + (": " + " | ".join(said[-3:]) if said else "")


def validate_grammar(grammar: str, field: str) -> str:
    """``grammar`` unchanged when llama.cpp parses it; otherwise a LimaError naming ``field``."""
    problem = grammar_problem(grammar)
    if problem is not None:
        raise LimaError(
            f"{field}: invalid GBNF grammar ({problem}); a llama.cpp server would crash on it. "
            "Fix the grammar (see llama.cpp's grammars/README.md) or remove it"
        )
    return grammar
