"""``lima generate``: read the prompt file, pick the benchmark's generation plan when the file is one (MT-Bench's
two turns, by the protocol registry), and run the generation engine (:mod:`lima.eval.generation`).

Each output line: ``{"prompt_id", "sample", "prompt", "model", "output", "settings"}``; ``settings`` holds the
decoding config and, under ``sent``, exactly what the backend was given.

Layer: runners. Imports engines, adapters and protocols.
"""

from __future__ import annotations

from pathlib import Path

from lima.core.errors import LimaError
from lima.eval.config import GenerateConfig
from lima.eval.generation import generate_prompts
from lima.eval.generation import reorder as _reorder  # noqa: F401  (the old private name)
from lima.eval.inputs import read_prompts
from lima.eval.protocols import protocol_for_prompts


def run_generation(
    config: GenerateConfig,
    out_path: Path,
    model: str | None = None,
    prompts: Path | None = None,
    limit: int | None = None,
) -> Path:
    """Generate ``decoding.samples`` responses for every prompt not yet in ``out_path`` (appending)."""
    prompt_path = Path(prompts or config.prompts)
    if config.prompt_format == "auto":
        protocol = protocol_for_prompts(prompt_path)
        if protocol is not None and protocol.generate is not None:
            # e.g. MT-Bench: turn 2 continues the model's own turn-1 answer, one pass per turn
            return protocol.generate(config, Path(out_path), model, prompt_path, limit)
    todo_all = read_prompts(prompt_path, config.prompt_format)[:limit]
    if not todo_all:
        raise LimaError(f"{prompt_path}: no prompts left to generate from (--limit {limit})")
    return generate_prompts(config, Path(out_path), todo_all, model=model, inputs=[prompt_path])
