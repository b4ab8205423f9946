"""Helpers for the curation tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMA_YAML = str(ROOT / "configs" / "curate" / "lima.yaml")
FAST = ["report.embedding_map=false"]  # the embedding map has its own test


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def summary(out: Path) -> dict:
    return json.loads((out / "curation.json").read_text())


def assert_ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def curate(cli, tmp_path):
    """Run ``lima curate`` with lima.yaml (or ``config=``), extra args and overrides; return (result, out)."""
    counter = iter(range(100))

    def run(*args: str, config: str = LIMA_YAML, out: Path | None = None):
        out = out or tmp_path / f"out{next(counter)}"
        result = cli("curate", config, "--out", str(out), *args, *FAST)
        return result, out

    return run
