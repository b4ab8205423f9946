"""Single-answer Likert grading (LIMA's ablation metric): helpfulness 1–6, K judge samples per prompt,
the prompt's score is the mean of its parsed samples; summary is the mean over prompts with a bootstrap CI.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from lima.core.io import atomic_open, stable_hash, write_json
from lima.core.llm_client import ChatRequest, LLMClient
from lima.eval.config import GradeConfig
from lima.eval.io import judged_prompt
from lima.eval.judge import annotator_hash, fill, load_template
from lima.eval.parsers import parse_likert
from lima.eval.stats import bootstrap_ci


def _config_hash(config: GradeConfig, template: str) -> str:
    return annotator_hash(config, template)


def run_grading(
    config: GradeConfig, gen: Path, out_dir: Path, samples: int | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Grade every generation in ``gen``; writes scores.jsonl and summary.json into ``out_dir``."""
    from lima.core.manifest import RunManifest
    from lima.eval.io import read_generations

    gen, out_dir = Path(gen), Path(out_dir)
    k = samples or config.samples
    records = read_generations(gen, config.allow_empty)[:limit]
    template = load_template(config.template, ("prompt", "answer"))
    config_hash = _config_hash(config, template)

    def request(record: dict[str, Any], sample: int, attempt: int) -> ChatRequest:
        answer = record["output"]
        if config.max_answer_chars and len(answer) > config.max_answer_chars:
            answer = answer[: config.max_answer_chars] + "\n[… truncated]"
        messages = [{"role": "user", "content": fill(template, prompt=judged_prompt(record), answer=answer)}]
        if config.system_prompt:
            messages.insert(0, {"role": "system", "content": config.system_prompt})
        key = stable_hash([config_hash, judged_prompt(record), answer, sample, attempt])
        # Distinct samples need distinct randomness: vary the seed with the sample index.
        return ChatRequest(
            key, messages, config.temperature, config.max_tokens, seed=config.seed + 1000 * sample + attempt
        )

    cache = Path(config.cache) if config.cache else out_dir / "grade_cache.sqlite"
    slots = {
        (i, s): {"score": None, "raw": None, "error": None} for i in range(len(records)) for s in range(k)
    }
    with RunManifest(out_dir, "grade", config, inputs=[gen], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            pending = list(slots)
            for attempt in range(config.parse_retries + 1):
                if not pending:
                    break
                results = client.complete_many(
                    [request(records[i], s, attempt) for i, s in pending],
                    desc="grading" if attempt == 0 else f"grading (re-ask {attempt})",
                )
                retry = []
                for slot, result in zip(pending, results, strict=True):
                    if result.error is not None:
                        slots[slot]["error"] = result.error
                        continue
                    score = parse_likert(result.text or "")
                    slots[slot].update(
                        raw=result.text, score=score, error=None if score else "unparseable reply"
                    )
                    if score is None:
                        retry.append(slot)
                pending = retry
            stats = client.stats.as_dict()
        rows, means = [], []
        for i, record in enumerate(records):
            parsed = [slots[(i, s)]["score"] for s in range(k) if slots[(i, s)]["score"] is not None]
            mean = sum(parsed) / len(parsed) if parsed else None
            if mean is not None:
                means.append(mean)
            rows.append(
                {
                    "prompt_id": record["prompt_id"],
                    "prompt": record["prompt"],
                    "output": record["output"],
                    "score": mean,
                    "scores": parsed,
                    "errors": k - len(parsed),
                    "raw": [slots[(i, s)]["raw"] for s in range(k)],
                }
            )
        with atomic_open(out_dir / "scores.jsonl") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        low, high = bootstrap_ci(means, config.bootstrap, config.seed)
        names = {str(r.get("model")) for r in records if r.get("model")}
        summary = {
            "model": names.pop() if len(names) == 1 else gen.stem,
            "n": len(means),
            "errors": len(records) - len(means),
            "failed_samples": sum(r["errors"] for r in rows),
            "samples": k,
            "mean": round(sum(means) / len(means), 4) if means else None,
            "ci95": [round(low, 4), round(high, 4)] if means else [None, None],
            "histogram": {
                str(s): c for s, c in sorted(Counter(v for r in rows for v in r["scores"]).items())
            },
            "judge": config.endpoint.model,
            "client": stats,
        }
        write_json(out_dir / "summary.json", summary)
        manifest.update(
            client=stats,
            outputs=sorted(os.listdir(out_dir)),
            summary={k2: summary[k2] for k2 in ("n", "errors", "mean", "ci95")},
        )
    return summary
