"""Stage bookkeeping for `lima run`: skip a stage whose config and inputs are unchanged (by content hash),
continue one that started with the same key but did not finish, start over when the key changed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.io import path_sha256, stable_hash, write_json

MARKER = ".lima_stage.json"


def input_hashes(paths: Iterable[str | Path | None]) -> dict[str, str | None]:
    return {str(p): (path_sha256(p) if Path(p).exists() else None) for p in paths if p is not None}


def files_in(obj: Any) -> list[str]:
    """Existing files/folders named anywhere inside a config dict (so their content joins the stage key)."""
    found: list[str] = []
    if isinstance(obj, dict):
        for value in obj.values():
            found += files_in(value)
    elif isinstance(obj, list):
        for value in obj:
            found += files_in(value)
    elif (
        isinstance(obj, str)
        and len(obj) < 4096
        and ("/" in obj or obj.endswith((".jsonl", ".json", ".xml", ".csv")))
    ):
        path = Path(obj)
        if path.exists():
            found.append(obj)
    return found


def stage_key(config: Any, inputs: Iterable[str | Path | None] = ()) -> str:
    """Content key of a stage: its resolved config and the hashes of every input it reads."""
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    return stable_hash({"config": data, "inputs": input_hashes([*inputs, *files_in(data)])})


@dataclass
class Stage:
    run_dir: Path
    name: str

    @property
    def dir(self) -> Path:
        return self.run_dir / self.name

    @property
    def marker(self) -> Path:
        return self.dir / MARKER

    def state(self) -> dict[str, Any] | None:
        if not self.marker.exists():
            return None
        try:
            return json.loads(self.marker.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def is_done(self, key: str) -> bool:
        state = self.state()
        return bool(state and state.get("key") == key and state.get("complete"))

    def begin(self, key: str) -> bool:
        """Prepare to run; True when an unfinished run with the same key is being continued."""
        state = self.state()
        if state and state.get("key") == key:
            return True
        self.reset(key)  # a different config or input: its old outputs are not ours to reuse
        return False

    def reset(self, key: str) -> None:
        """Empty the stage folder and start it again under ``key``."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        write_json(self.marker, {"key": key, "complete": False})

    def finish(self, key: str, outputs: dict[str, Any]) -> None:
        write_json(self.marker, {"key": key, "complete": True, "outputs": outputs})

    def outputs(self) -> dict[str, Any]:
        return (self.state() or {}).get("outputs", {})
