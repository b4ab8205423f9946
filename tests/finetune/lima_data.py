"""Real LIMA training examples (../shared/data) as example records, for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

from lima.core.record import write_records

PREAMBLE_END = "### Instruction: "


def lima_records(shared_data: Path, n: int, start: int = 0) -> list[dict]:
    rows = json.loads((shared_data / "lima" / "lima_train_1k_fastchat.json").read_text(encoding="utf-8"))
    records = []
    for row in rows[start : start + n]:
        turns = row["conversations"]
        prompt = turns[0]["value"]
        prompt = prompt.split(PREAMBLE_END, 1)[1] if PREAMBLE_END in prompt else prompt
        roles = {"human": "user", "gpt": "assistant"}
        messages = [{"role": "user", "content": prompt.strip()}]
        messages += [{"role": roles[t["from"]], "content": t["value"]} for t in turns[1:]]
        records.append({"id": str(row["id"]), "source": "lima", "messages": messages})
    return records


def write_lima_jsonl(shared_data: Path, path: Path, n: int, start: int = 0) -> Path:
    write_records(path, lima_records(shared_data, n, start))
    return path
