"""A resumed output never mixes settings: a small fingerprint of what shapes the results is kept beside a
resumable output, and a rerun into it with other settings is refused, naming the keys that differ.

    settings = config_settings(cfg, ignore=RUN_ONLY)
    guard_settings(out_dir / SETTINGS_NAME, settings, out=out_dir, has_output=(out_dir / "x.jsonl").exists())

Keys present on one side only (a setting added by a newer lima) are not compared.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError

SETTINGS_NAME = ".lima_settings.json"
# How a run is carried out, not what it produces: never a reason to refuse a resume.
RUN_ONLY = frozenset(
    {
        "concurrency",
        "timeout_s",
        "max_retries",
        "price_per_million_input_tokens",
        "price_per_million_output_tokens",
        "api_key_env",
        "embedded_n_ctx",
        "cache",
        "bootstrap",
        "batch_size",
        "device",
        "allow_empty",
    }
)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def config_settings(config: Any, ignore: frozenset[str] = RUN_ONLY, **extra: Any) -> dict[str, Any]:
    """A pydantic config as plain JSON data without the ``ignore`` keys (at any depth), plus ``extra``."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ignore}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return _plain({**strip(config.model_dump(mode="json")), **extra})


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def differing_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys present in both whose values differ."""
    a, b = _flatten(_plain(old)), _flatten(_plain(new))
    return [key for key in sorted(set(a) & set(b)) if a[key] != b[key]]


def read_settings(store: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def guard_settings(
    store: str | os.PathLike,
    settings: dict[str, Any],
    out: str | os.PathLike,
    has_output: bool,
    overwrite: bool = False,
    previous: dict[str, Any] | None = None,
) -> None:
    """Refuse to resume ``out`` when it was made with other settings; otherwise record ``settings``.

    ``previous``: the settings read from the output itself, for outputs made before the fingerprint existed.
    """
    store = Path(store)
    old = read_settings(store) or previous
    if has_output and old is not None and not overwrite:
        diff = differing_keys(old, settings)
        if diff:
            a, b = _flatten(_plain(old)), _flatten(_plain(settings))
            shown = "; ".join(f"{k}: {a[k]!r} there, {b[k]!r} now" for k in diff[:6])
            more = f" and {len(diff) - 6} more" if len(diff) > 6 else ""
            raise LimaError(
                f"{out}: made with other settings ({shown}{more}); resuming would mix them. "
                "Choose a new --out, or pass --overwrite to start that output again"
            )
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_name(store.name + ".tmp")
    tmp.write_text(json.dumps(_plain(settings), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, store)
