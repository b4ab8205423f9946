"""``manifest.json`` for every run directory: what ran, on what, with which inputs, and how it ended.

Secrets never reach a manifest: keys that name secrets are masked and any value of a secret-looking
environment variable is scrubbed from every string (:func:`redact`).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lima import __version__
from lima.core.io import file_sha256, path_sha256, write_json

MANIFEST = "manifest.json"
MASK = "***"
_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|password|passwd|authorization|bearer|access[_-]?token|hf[_-]?token)$", re.I
)
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "openai",
    "gguf",
    "llama_cpp_python",
)


def _secret_values() -> list[str]:
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8),
        key=len,
        reverse=True,
    )


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Replace any secret environment value inside ``text`` by ***."""
    for secret in _secret_values() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact(obj: Any, secrets: list[str] | None = None) -> Any:
    """A copy of ``obj`` with secret-named keys masked and secret values scrubbed from all strings."""
    secrets = _secret_values() if secrets is None else secrets
    if isinstance(obj, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) and v else redact(v, secrets))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact(v, secrets) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    return obj


def git_info(start: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout holding this package (or ``start``), if any."""
    where = start or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {"commit": None}
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "lima": __version__}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def host_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    if "torch" in sys.modules:  # only report CUDA when torch is already loaded: never import it just for this
        torch = sys.modules["torch"]
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def describe_inputs(paths: list[str | os.PathLike]) -> list[dict[str, Any]]:
    described = []
    for p in paths:
        path = Path(p)
        if path.is_file():
            described.append({"path": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size})
        elif path.is_dir():
            described.append({"path": str(path), "sha256": path_sha256(path)})
        else:
            described.append({"path": str(path), "sha256": None})
    return described


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunManifest:
    """Writes ``OUT/manifest.json`` when a run starts and again, with its exit status, when it ends.

    with RunManifest(out, "curate", config, inputs=[dump], seed=0) as manifest:
        ...
        manifest.update(outputs={"train": "train.jsonl"}, counts=counts)
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        command: str,
        config: BaseModel | dict[str, Any] | None = None,
        inputs: list[str | os.PathLike] | None = None,
        seed: int | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST
        config_data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
        self.data: dict[str, Any] = {
            "command": command,
            "argv": sys.argv,
            "config": config_data,
            "inputs": describe_inputs(inputs or []),
            "seed": seed,
            "git": git_info(),
            "versions": package_versions(),
            "host": host_info(),
            "started_at": _now(),
            "ended_at": None,
            "status": "running",
        }
        self._t0 = time.monotonic()

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.write()

    def write(self) -> None:
        write_json(self.path, redact(self.data))

    def __enter__(self) -> RunManifest:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.write()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            status = "ok"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "failed"
            self.data["error"] = f"{exc_type.__name__}: {exc}"
        self.data.update(
            status=status,
            ended_at=_now(),
            duration_s=round(time.monotonic() - self._t0, 3),
            host=host_info(),
        )
        self.write()


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    import json

    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def free_disk_gb(path: str | os.PathLike = ".") -> float:
    return shutil.disk_usage(path).free / 1e9
