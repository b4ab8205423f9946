"""lima's own evaluation records — prompts, generations, pairs to judge — and the readers of lima's own files,
with one-line errors that name the file and line. Files in other tools' formats are read by the adapters
(:mod:`lima.eval.inputs`, :mod:`lima.eval.formats`), never here.

Layer: bottom (records, parsers, templates). Imports only ``lima.core``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.names import display_name

GEN_FIELDS = ("prompt_id", "prompt", "model", "output", "settings")
LIMA_PROMPT_FORMATS = ("text", "lima_test", "records", "generations")


def turn_id(question_id: Any, turn: int) -> str:
    """The prompt id of turn ``turn`` of a multi-turn question (MT-Bench): ``81``, ``81:turn2``."""
    return str(question_id) if turn == 1 else f"{question_id}:turn{turn}"


def split_turn_id(prompt_id: str) -> tuple[str, int]:
    """``"81:turn2"`` -> ``("81", 2)``; a plain id is turn 1 of itself."""
    qid, _, turn = prompt_id.partition(":turn")
    return qid, int(turn) if turn.isdigit() else 1


def question_of(judgment: dict[str, Any]) -> str:
    """The question a judgment (or generation line) belongs to: its ``question_id`` where it names one, else
    its prompt id without a turn suffix. The turns of one question are one unit when resampling."""
    if judgment.get("question_id") is not None:
        return str(judgment["question_id"])
    return split_turn_id(str(judgment.get("prompt_id")))[0]


@dataclass
class PairItem:
    """One prompt with the two answers to compare (A and B are models, not positions)."""

    id: str
    prompt: str
    answer_a: str
    answer_b: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prompt:
    id: str
    text: str  # the (last) user turn, what a judge sees as the question
    messages: list[dict[str, str]] = field(default_factory=list)  # the full conversation to continue

    @property
    def history(self) -> list[dict[str, str]]:
        """The turns before the last user turn (empty for a single-turn prompt)."""
        turns = [m for m in self.messages if m["role"] != "system"]
        return turns[:-1] if len(turns) > 1 else []

    def chat(self, system_prompt: str | None = None) -> list[dict[str, str]]:
        messages = self.messages or [{"role": "user", "content": self.text}]
        if system_prompt and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system_prompt}, *messages]
        return messages


def judged_prompt(record: dict[str, Any]) -> str:
    """What a judge sees as the question: the last user turn, preceded by the conversation so far when the
    generation continued a multi-turn dialogue (LIMA's dialogue evaluation)."""
    history = record.get("history") or []
    if not history:
        return record["prompt"]
    turns = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in history)
    return f"[Conversation so far]\n{turns}\n\n[Final user turn, to be answered]\n{record['prompt']}"


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise LimaError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None


def detect_lima_prompt_format(path: Path) -> str:
    """Which of lima's own prompt files ``path`` is (``LIMA_PROMPT_FORMATS``)."""
    if path.suffix == ".txt":
        return "text"
    if not path.read_bytes().strip():
        raise LimaError(f"{path}: empty file: no prompts to generate from")
    for _, obj in _json_lines(path):
        if isinstance(obj, dict) and "conversations" in obj:
            return "lima_test"
        if isinstance(obj, dict) and "messages" in obj:
            return "records"
        if isinstance(obj, dict) and "prompt_id" in obj:
            return "generations"
        break
    raise LimaError(
        f"{path}: cannot tell the prompt format: expected the LIMA test file (conversations: [prompt]), "
        "example records (messages), a generations file (prompt_id, prompt) or a .txt file; set prompt_format"
    )


def read_lima_prompts(path: str | os.PathLike, fmt: str = "auto") -> list[Prompt]:
    """Prompts from the LIMA test file, record-format JSONL, a generations file or one prompt per line."""
    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: prompt file not found (set prompts: or pass --prompts)")
    fmt = detect_lima_prompt_format(path) if fmt == "auto" else fmt
    prompts: list[Prompt] = []
    if fmt == "text":
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                prompts.append(Prompt(f"{path.stem}-{lineno}", line.strip()))
    elif fmt == "lima_test":
        for lineno, obj in _json_lines(path):
            turns = obj.get("conversations") if isinstance(obj, dict) else None
            if not turns or not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise LimaError(f"{path}:{lineno}: conversations: expected a list of strings")
            roles = ["user", "assistant"] * len(turns)
            messages = [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False)]
            if messages[-1]["role"] != "user":
                messages = messages[:-1]  # a trailing reference answer is not part of the prompt
            prompts.append(Prompt(f"{path.stem}-{lineno}", messages[-1]["content"], messages))
    elif fmt == "records":
        from lima.core.record import read_records

        for example in read_records(path):
            messages = list(example.messages)
            while messages and messages[-1]["role"] == "assistant":
                messages.pop()
            if not messages or messages[-1]["role"] != "user":
                raise LimaError(f"{path}: record {example.id}: no user turn to answer")
            prompts.append(Prompt(example.id, messages[-1]["content"], messages))
    elif fmt == "generations":
        records = read_lima_generations(path, allow_empty=True)
        prompts = [Prompt(r["prompt_id"], r["prompt"]) for r in records if r.get("sample", 0) == 0]
    else:
        raise LimaError(f"unknown prompt_format {fmt!r}")
    return check_prompts(path, prompts)


def check_prompts(path: Path, prompts: list[Prompt]) -> list[Prompt]:
    """``prompts`` when their ids are unique and there is at least one."""
    seen: dict[str, int] = {}
    for i, prompt in enumerate(prompts):
        if prompt.id in seen:
            raise LimaError(
                f"{path}: duplicate prompt id {prompt.id!r} (entries {seen[prompt.id] + 1} and {i + 1})"
            )
        seen[prompt.id] = i
    if not prompts:
        raise LimaError(f"{path}: no prompts found")
    return prompts


def read_lima_generations(path: str | os.PathLike, allow_empty: bool = False) -> list[dict[str, Any]]:
    """A ``lima generate`` output file, validated: fields present, ids unique, outputs non-empty."""
    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: generations file not found")
    records: list[dict[str, Any]] = []
    lines: dict[tuple[str, Any], int] = {}
    empty: list[str] = []
    for lineno, obj in _json_lines(path):
        if not isinstance(obj, dict):
            raise LimaError(f"{path}:{lineno}: expected a JSON object with {', '.join(GEN_FIELDS)}")
        missing = [f for f in ("prompt_id", "prompt", "output") if f not in obj]
        if missing:
            raise LimaError(
                f"{path}:{lineno}: missing field(s) {', '.join(missing)}; is this a `lima generate` file?"
            )
        pid = str(obj["prompt_id"])
        sample = obj.get("sample", 0)  # K responses per prompt share prompt_id (`decoding.samples`)
        if not isinstance(sample, int) or isinstance(sample, bool):
            raise LimaError(f"{path}:{lineno}: sample: expected an integer, got {sample!r}")
        if (pid, sample) in lines:
            again = f"duplicate prompt_id {pid!r}" + (f" sample {sample}" if sample else "")
            raise LimaError(f"{path}:{lineno}: {again} (first on line {lines[pid, sample]})")
        lines[pid, sample] = lineno
        if not isinstance(obj["output"], str) or not obj["output"].strip():
            empty.append(f"{lineno}")
        records.append({**obj, "prompt_id": pid})
    if empty and not allow_empty:
        shown = ", ".join(empty[:5]) + (" …" if len(empty) > 5 else "")
        raise LimaError(
            f"{path}: {len(empty)} empty output(s) on line(s) {shown}; regenerate them "
            "(delete those lines and rerun `lima generate`, which resumes) or set allow_empty=true"
        )
    if not records:
        raise LimaError(f"{path}: no generations")
    return records


def pair_generations(
    gen_a: list[dict[str, Any]], gen_b: list[dict[str, Any]], path_a: Path, path_b: Path
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Match two generation files by prompt_id; they must cover the same prompts."""
    by_b = {r["prompt_id"]: r for r in gen_b}
    ids_a = [r["prompt_id"] for r in gen_a]
    only_a = [i for i in ids_a if i not in by_b]
    only_b = sorted(set(by_b) - set(ids_a))
    if only_a or only_b:
        raise LimaError(
            f"{path_a} and {path_b} cover different prompts: {len(only_a)} id(s) only in A "
            f"(e.g. {only_a[:3]}), {len(only_b)} only in B (e.g. {only_b[:3]}); generate both from the same prompt file"
        )
    pairs = []
    for record in gen_a:
        other = by_b[record["prompt_id"]]
        if other["prompt"] != record["prompt"]:
            raise LimaError(
                f"{path_a} / {path_b}: prompt_id {record['prompt_id']!r} has different prompt texts"
            )
        pairs.append((record, other))
    return pairs


def first_samples(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pairwise judging compares one answer per prompt: sample 0 of a file with K samples per prompt."""
    return [r for r in records if r.get("sample", 0) in (0, None)]


def model_name(records: list[dict[str, Any]], path: Path) -> str:
    """The one model named in ``records``, else the file's stem."""
    names = {str(display_name(r)) for r in records if display_name(r)}
    return names.pop() if len(names) == 1 else path.stem
