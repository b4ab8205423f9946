"""Model names for people: what generations, reports, exports and charts call a model.

``lima generate --name`` (or ``name:`` in the generate config) sets one; otherwise a short name comes from the
spec: a checkpoint path reads ``epoch-2 of runs/demo``, another local path its folder name; hub ids and
``embedded:`` specs stay as written. Never an absolute path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# Folder names that only mean something together with their run: "epoch-2" alone names nothing.
_CHECKPOINT = re.compile(r"^(epoch|checkpoint|step|ckpt)[-_]?\d+$|^(final|export|merged|best|last)$", re.I)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or spec.count("/") >= 2 or "\\" in spec or Path(spec).exists()


def _short_folder(folder: Path) -> str:
    """``folder`` relative to the working directory when under it, else its last two parts."""
    try:
        return folder.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return "/".join(folder.parts[-2:]) if folder.is_absolute() else folder.as_posix()


def short_name(spec: str | None) -> str | None:
    """A short, readable name for a model spec (see the module docstring)."""
    if not spec:
        return spec
    spec = str(spec).strip()
    if spec.startswith("embedded:") or not _looks_like_path(spec):
        return spec
    path = Path(spec.rstrip("/\\")).expanduser()
    leaf = path.name
    if not _CHECKPOINT.match(leaf):
        return leaf or spec
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    where = _short_folder(run)
    return leaf if where in ("", ".") else f"{leaf} of {where}"


def display_name(record: dict[str, Any]) -> str | None:
    """The name a generation (or judgment) line gives its model: its ``name``, else the short ``model``."""
    return record.get("name") or short_name(record.get("model"))
