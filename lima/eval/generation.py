"""The generation engine: K responses per prompt (default 1), appended line by line so an interrupted run resumes.

Each output line: ``{"prompt_id", "sample", "prompt", "model", "output", "settings"}``; ``settings`` holds the
decoding config and, under ``sent``, exactly what the backend was given. Backends: ``transformers`` (batched,
left padding; decoding per :mod:`lima.eval.decoding`), ``vllm`` (optional extra, GPU) and ``openai`` (any
OpenAI-compatible endpoint). Response ``(prompt_id, sample)`` samples with its own seed from
``(seed, prompt_id, sample)``, so neither batching nor resuming changes it.

It takes the prompts themselves (:class:`lima.eval.records.Prompt`), never a file format: reading a prompt file
is the runner's job (:mod:`lima.eval.generate`), and a benchmark's generation plan (MT-Bench's two turns) is a
protocol's (:mod:`lima.eval.protocols`), which calls :func:`generate_prompts` once per turn.

Layer: engines. Imports the bottom layer, :mod:`lima.eval.backends` and ``lima.core``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.names import short_name
from lima.eval.backends import _generate_openai, _generate_transformers, _generate_vllm, openai_sampling
from lima.eval.config import GenerateConfig
from lima.eval.decoding import sample_seed
from lima.eval.records import Prompt


@dataclass(frozen=True)
class _Job:
    """One response to make: sample ``sample`` of ``prompt``, drawn with ``seed``."""

    prompt: Prompt
    sample: int
    seed: int

    @property
    def key(self) -> str:
        return f"{self.prompt.id}#{self.sample}"


def _jobs(prompts: list[Prompt], samples: int, seed: int, done: set[tuple[str, int]]) -> list[_Job]:
    return [
        _Job(p, k, sample_seed(seed, p.id, k))
        for p in prompts
        for k in range(samples)
        if (p.id, k) not in done
    ]


def _resume(out_path: Path, model: str) -> set[tuple[str, int]]:
    """``(prompt_id, sample)`` pairs already finished in ``out_path``; drops a torn last line left by a kill."""
    if not out_path.exists():
        return set()
    done: set[tuple[str, int]] = set()
    good_bytes = 0
    with open(out_path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                obj = json.loads(raw)
                if not raw.endswith(b"\n"):
                    raise ValueError("torn line")
            except ValueError:
                if fh.read(1):  # a bad line in the middle is not ours to repair
                    raise LimaError(f"{out_path}:{lineno}: not valid JSON; fix or delete the file") from None
                break
            where = f"{out_path}:{lineno}"
            if not isinstance(obj, dict) or "prompt_id" not in obj:
                raise LimaError(
                    f"{where}: not a `lima generate` line (expected a JSON object with a prompt_id); "
                    "choose another --out, or delete that line or the file"
                )
            if obj.get("model") != model:
                raise LimaError(
                    f"{out_path}: holds generations of {obj.get('model')!r}, not {model!r}; choose another --out"
                )
            sample = obj.get("sample", 0)  # files from before K samples hold sample 0 only
            if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
                raise LimaError(
                    f"{where}: sample: expected an integer >= 0, got {sample!r}; fix or delete the line"
                )
            done.add((str(obj["prompt_id"]), sample))
            good_bytes += len(raw)
    if good_bytes < out_path.stat().st_size:
        os.truncate(out_path, good_bytes)
    return done


class _Writer:
    """Appends generation records, flushed and fsynced per batch."""

    def __init__(self, path: Path, model: str, settings: dict[str, Any], name: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8")
        self.model = model
        self.name = name or short_name(model)  # what reports call it; never an absolute path
        self.settings = settings
        self.count = 0
        self.empty = 0

    def write(self, job: _Job, output: str, **extra: Any) -> None:
        prompt = job.prompt
        record = {
            "prompt_id": prompt.id,
            "sample": job.sample,
            "prompt": prompt.text,
            "model": self.model,
            "name": self.name,
            "output": output,
            "settings": {**self.settings, "sample_seed": job.seed, **extra},
        }
        if prompt.history:  # a multi-turn prompt: keep the conversation the answer continues
            record["history"] = prompt.history
        self.fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1
        self.empty += not output.strip()

    def flush(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.flush()
        self.fh.close()


def reorder(out_path: Path, order: list[str]) -> None:
    """Rewrite ``out_path`` in prompt then sample order (results arrive out of order under concurrency),
    atomically."""
    from lima.core.io import atomic_open

    lines = out_path.read_text(encoding="utf-8").splitlines()
    rank = {pid: i for i, pid in enumerate(order)}

    def position(line: str) -> tuple[int, int]:
        obj = json.loads(line)
        return rank.get(str(obj["prompt_id"]), len(rank)), obj.get("sample", 0)

    lines.sort(key=position)
    with atomic_open(out_path) as fh:
        fh.write("".join(line + "\n" for line in lines))


def generate_prompts(
    config: GenerateConfig,
    out_path: Path,
    prompts: list[Prompt],
    model: str | None = None,
    inputs: list[Path] | None = None,
) -> Path:
    """Generate ``decoding.samples`` responses for every prompt not yet in ``out_path`` (appending), then put
    the file in prompt order. ``inputs``: the files the prompts came from (for the run manifest)."""
    from lima.core.manifest import RunManifest

    out_path = Path(out_path)
    if config.backend == "openai":
        if config.endpoint is None:
            raise LimaError("backend openai needs an endpoint: section (base_url, model, api_key_env)")
        if model:
            config = config.model_copy(
                update={"endpoint": config.endpoint.model_copy(update={"model": model})}
            )
        model_name = config.endpoint.model
        openai_sampling(config)  # a missing openai_server fails before anything is sent
    else:
        model_name = model or config.model
    decoding = config.decoding
    done = _resume(out_path, model_name)
    todo = _jobs(prompts, decoding.samples, decoding.seed, done)
    settings = {"backend": config.backend, **decoding.model_dump()}
    run_dir = out_path.parent / f"{out_path.stem}.run"
    with RunManifest(run_dir, "generate", config, inputs=inputs or [], seed=decoding.seed) as manifest:
        writer = _Writer(out_path, model_name, settings, config.name)
        try:
            if todo and config.backend == "transformers":
                _generate_transformers(config, model_name, todo, writer)
            elif todo and config.backend == "vllm":
                _generate_vllm(config, model_name, todo, writer)
            elif todo:
                _generate_openai(config, todo, writer)
        finally:
            writer.close()
            manifest.update(
                model=model_name,
                output=str(out_path),
                prompts=len(prompts),
                samples=decoding.samples,
                resumed=len(done),
                generated=writer.count,
                empty_outputs=writer.empty,
            )
    if todo:
        reorder(out_path, [p.id for p in prompts])
    if writer.empty:
        from lima.core.cli_util import echo_err

        echo_err(
            f"warning: {writer.empty} empty output(s) in {out_path}; `lima judge` refuses them unless allow_empty"
        )
    return out_path
