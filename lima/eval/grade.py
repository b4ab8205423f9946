"""``lima grade``: read a generations file (lima's or a leaderboard's), grade every line with the grading engine
(:mod:`lima.eval.grading`), write ``scores.jsonl`` and ``summary.json``.

Layer: runners. The names below re-exported from the engine keep older imports working.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lima.core.dry_run import DryRunClient
from lima.core.errors import LimaError
from lima.core.io import atomic_open, write_json
from lima.core.llm_client import LLMClient
from lima.eval.config import GradeConfig
from lima.eval.grading import (  # noqa: F401  (re-exported)
    ABSOLUTE_LABELS,
    DEFAULT_TEMPLATES,
    GRAMMARS,
    absolute_summary,
    grade_records,
    grade_summary,
    grading_template,
    parse_absolute,
)
from lima.eval.inputs import read_generations
from lima.eval.judge import check_benchmark_files
from lima.eval.protocols import protocol_for_pairs
from lima.eval.records import model_name


def grade_prompts(config: GradeConfig, gen: Path, records: list[dict[str, Any]]) -> Any:
    """The benchmark's grading strategy for ``scale: mt_bench`` (FastChat's single-answer prompts), else None."""
    if config.scale != "mt_bench":
        return None
    check_benchmark_files(config)
    protocol = protocol_for_pairs([gen], [records])
    if protocol is None or protocol.grade_prompt is None:
        raise LimaError(
            f"scale: mt_bench grades MT-Bench answers (ids 81, 81:turn2, ...), and {gen} holds none; give "
            "a FastChat model_answer file or lima generations of MT-Bench's question.jsonl"
        )
    return protocol.grade_prompt(config, records)


def run_grading(
    config: GradeConfig,
    gen: Path,
    out_dir: Path,
    samples: int | None = None,
    limit: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Grade every generation line in ``gen``; writes scores.jsonl (one row per line) and summary.json.

    ``limit`` keeps the first N prompts (with all their sampled lines). ``dry_run``: write every request that
    would be sent to ``out_dir/requests.jsonl`` instead and return their count, tokens and cost."""
    from lima.core.manifest import RunManifest

    gen, out_dir = Path(gen), Path(out_dir)
    k = samples or config.samples
    records = read_generations(gen, config.allow_empty)
    prompt_ids = list(dict.fromkeys(r["prompt_id"] for r in records))
    if limit is not None:
        keep = set(prompt_ids[:limit])
        records = [r for r in records if r["prompt_id"] in keep]
        prompt_ids = prompt_ids[:limit]
    template = grading_template(config)  # a bad template stops the run before anything is written
    prompts = grade_prompts(config, gen, records)  # MT-Bench's single-v1 family; checked before any request
    if dry_run:
        with DryRunClient(config.endpoint) as recorder:
            grade_records(config, records, recorder, k, template, prompts)
        path = recorder.write(out_dir / "requests.jsonl")
        return {"model": model_name(records, gen), "requests_file": str(path), **recorder.totals()}
    cache = Path(config.cache) if config.cache else out_dir / "grade_cache.sqlite"
    with RunManifest(out_dir, "grade", config, inputs=[gen], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            rows = grade_records(config, records, client, k, template, prompts)
            stats = client.stats.as_dict()
        with atomic_open(out_dir / "scores.jsonl") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        summary = grade_summary(config, rows, prompt_ids, k, config.scale == "absolute")
        summary = {
            "model": model_name(records, gen),
            **summary,
            "judge": config.endpoint.model,
            "client": stats,
        }
        write_json(out_dir / "summary.json", summary)
        manifest.update(
            client=stats,
            outputs=sorted(os.listdir(out_dir)),
            summary={
                key: summary.get(key) for key in ("scale", "n", "errors", "mean", "ci95", "excellent_pct")
            },
        )
    return summary
