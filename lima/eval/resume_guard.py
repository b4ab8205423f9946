"""What `lima generate`, `judge` and `grade` check before any work: the output path, the lock that keeps a
second run out, and the settings a resumed output was made with (:mod:`lima.core.settings_guard`).

    with guard_generate(cfg, out, model, overwrite):
        run_generation(cfg, out, model=model)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lima.core.cli_util import echo_err
from lima.core.errors import LimaError
from lima.core.lock import LOCK_NAME, OutputLock
from lima.core.names import short_name
from lima.core.outputs import check_out_dir, check_out_file
from lima.core.settings_guard import RUN_ONLY, SETTINGS_NAME, config_settings, guard_settings

# Judge fields that only shape the summary, recomputed from every stored reply on each run.
_SUMMARY_ONLY = frozenset({"seed", "combine", "tie_margin", "parse_retries", "bootstrap"})


def _first_line(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.loads(fh.readline())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _model_name(config: Any, model: str | None) -> str:
    """The model a generation line records (run_generation's ``model_name``)."""
    if model:
        return model
    return config.endpoint.model if config.backend == "openai" and config.endpoint else config.model


def generate_settings(config: Any, model: str | None) -> dict[str, Any]:
    """What makes two generation lines comparable: name, backend, decoding (not the sample count), prompt."""
    decoding = config.decoding.model_dump(mode="json")
    decoding.pop("samples", None)  # more samples per prompt extend a file; they do not mix it
    settings: dict[str, Any] = {
        "name": config.name or short_name(_model_name(config, model)),
        "backend": config.backend,
        "system_prompt": config.system_prompt,
        "decoding": decoding,
    }
    if config.backend == "openai":
        settings |= {"openai_server": config.openai_server, "openai_extra_body": config.openai_extra_body}
    return settings


def _legacy_generate_settings(out: Path) -> dict[str, Any] | None:
    """The settings a file written before fingerprints records in its first line."""
    first = _first_line(out)
    if first is None or not isinstance(first.get("settings"), dict):
        return None
    stored = first["settings"]
    decoding = {k: stored[k] for k in ("max_new_tokens", "temperature", "top_p", "repetition_penalty",
                                       "do_sample", "seed") if k in stored}  # fmt: skip
    legacy: dict[str, Any] = {"backend": stored.get("backend"), "decoding": decoding}
    if first.get("name") or first.get("model"):
        legacy["name"] = first.get("name") or short_name(first.get("model"))
    return {k: v for k, v in legacy.items() if v is not None}


@contextlib.contextmanager
def guard_generate(config: Any, out: Path, model: str | None, overwrite: bool) -> Iterator[None]:
    out = check_out_file(out, "JSONL")
    run_dir = out.parent / f"{out.stem}.run"
    with OutputLock(run_dir / LOCK_NAME, f"--out {out}"):
        if overwrite:
            out.unlink(missing_ok=True)
        has_output = out.exists() and out.stat().st_size > 0
        previous = _legacy_generate_settings(out) if has_output else None
        first = _first_line(out) if has_output else None
        # Another model's file: run_generation refuses it, naming both models; its fingerprint stays as it is.
        if first is None or first.get("model") == _model_name(config, model):
            settings = generate_settings(config, model)
            guard_settings(run_dir / SETTINGS_NAME, settings, out, has_output, overwrite, previous)
        yield


@contextlib.contextmanager
def guard_judge(config: Any, a: Path, b: Path, out: Path, overwrite: bool) -> Iterator[None]:
    out = check_out_dir(out)
    settings = config_settings(config, RUN_ONLY | _SUMMARY_ONLY, a=str(a.resolve()), b=str(b.resolve()))
    with OutputLock(out / LOCK_NAME, f"--out {out}"):
        has_output = (out / "judgments.jsonl").exists()  # the cache alone mixes nothing: keyed by settings
        guard_settings(out / SETTINGS_NAME, settings, out, has_output, overwrite)
        yield


@contextlib.contextmanager
def guard_grade(config: Any, gen: Path, out: Path, samples: int | None, overwrite: bool) -> Iterator[None]:
    out = check_out_dir(out)
    settings = config_settings(config, RUN_ONLY | {"bootstrap", "parse_retries"}, gen=str(gen.resolve()))
    settings["samples"] = samples or config.samples
    with OutputLock(out / LOCK_NAME, f"--out {out}"):
        has_output = (out / "scores.jsonl").exists()
        guard_settings(out / SETTINGS_NAME, settings, out, has_output, overwrite)
        yield


def warn_same_answers(a: Path, b: Path) -> None:
    """Judging a file against itself, or two files whose answers are all the same, can only give ties."""
    if a.resolve() == b.resolve():
        echo_err(f"warning: --a and --b are the same file ({a}); every verdict will be a tie")
        return
    from lima.eval.inputs import read_generations

    try:
        first = {
            r["prompt_id"]: r["output"] for r in read_generations(a, True) if r.get("sample", 0) in (0, None)
        }
        second = {
            r["prompt_id"]: r["output"] for r in read_generations(b, True) if r.get("sample", 0) in (0, None)
        }
    except (LimaError, OSError, KeyError, TypeError):
        return  # the run itself reports unreadable inputs
    common = first.keys() & second.keys()
    if common and all(first[k] == second[k] for k in common):
        echo_err(
            f"warning: {a} and {b} give the same answer to all {len(common)} prompt(s) they share; "
            "every verdict will be a tie (the same model twice?)"
        )
