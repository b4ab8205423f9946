"""Single-answer grading: every generation line graded ``samples`` times by an LLM.

Two scales:

- ``likert`` (LIMA's ablation metric): helpfulness 1–6. A line's score is the mean of its parsed grades, a
  prompt's score the mean over its lines (the K sampled responses of LIMA's protocol: 5 responses per prompt,
  each graded once), and the summary the mean over prompts with a bootstrap 95% CI.
- ``absolute`` (LIMA §4.3, Figure 3): each response labelled Fail (does not meet the requirements of the
  prompt), Pass (meets them) or Excellent (an excellent response to the prompt); a response graded more than
  once takes its most frequent label (the lower one on a tie). The summary gives the percentages over parsed
  responses, the counts and the errors.

A line that continues a conversation (``history``) is graded in context — the grader sees the conversation so
far — so a multi-turn file grades each assistant turn where it was said (LIMA §4.4); the summary breaks the
results down by turn.
"""

from __future__ import annotations

import json
import os
import re
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

DEFAULT_TEMPLATES = {"likert": "likert_helpfulness.txt", "absolute": "lima_absolute.txt"}
ABSOLUTE_LABELS = ("fail", "pass", "excellent")  # worst to best
_ABSOLUTE_LINE = re.compile(r"\b(?:grade|rating|label|verdict)\W{0,3}\s*\**\s*(fail|pass|excellent)\b", re.I)
_ABSOLUTE_WORD = re.compile(r"\b(fail|pass|excellent)\b", re.I)
# Replies a constrained grader may give (llama.cpp GBNF): built here, never taken from a config, so no grammar
# that reaches the server can be malformed.
GRAMMARS = {
    "absolute": 'root ::= "Fail" | "Pass" | "Excellent"',
    "likert": 'root ::= "Score: " [1-6]',
}


def parse_absolute(text: str) -> str | None:
    """``fail`` / ``pass`` / ``excellent``: the last ``Grade: X`` line; without one, the label word when the
    reply names exactly one of the three (a bare "Pass."), else None (an error, re-asked, never a guess)."""
    lines = list(_ABSOLUTE_LINE.finditer(text))
    if lines:
        return lines[-1].group(1).lower()
    words = {m.group(1).lower() for m in _ABSOLUTE_WORD.finditer(text)}
    return words.pop() if len(words) == 1 else None


def _turn(record: dict[str, Any]) -> int:
    """1 + the assistant turns before this one: the position of this answer in its conversation."""
    return 1 + sum(1 for m in record.get("history") or [] if m.get("role") == "assistant")


def _majority_label(labels: list[str]) -> str | None:
    if not labels:
        return None
    counts = Counter(labels)
    top = max(counts.values())
    return next(label for label in ABSOLUTE_LABELS if counts.get(label) == top)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def absolute_summary(labels: list[str | None]) -> dict[str, Any]:
    """Percentages (summing to 100 over parsed responses), counts and errors of Fail / Pass / Excellent."""
    parsed = [label for label in labels if label is not None]
    counts = {label: parsed.count(label) for label in ABSOLUTE_LABELS}
    pct = {
        f"{label}_pct": round(100 * counts[label] / len(parsed), 2) if parsed else None
        for label in ABSOLUTE_LABELS
    }
    return {"responses": len(parsed), **pct, "counts": counts, "errors": len(labels) - len(parsed)}


def run_grading(
    config: GradeConfig, gen: Path, out_dir: Path, samples: int | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Grade every generation line in ``gen``; writes scores.jsonl (one row per line) and summary.json.

    ``limit`` keeps the first N prompts (with all their sampled lines)."""
    from lima.core.manifest import RunManifest
    from lima.eval.io import read_generations

    gen, out_dir = Path(gen), Path(out_dir)
    k = samples or config.samples
    records = read_generations(gen, config.allow_empty)
    prompt_ids = list(dict.fromkeys(r["prompt_id"] for r in records))
    if limit is not None:
        keep = set(prompt_ids[:limit])
        records = [r for r in records if r["prompt_id"] in keep]
        prompt_ids = prompt_ids[:limit]
    absolute = config.scale == "absolute"
    parse = parse_absolute if absolute else parse_likert
    template = load_template(config.template or DEFAULT_TEMPLATES[config.scale], ("prompt", "answer"))
    # A grammar changes the replies; unconstrained graders keep the keys their caches were written with.
    config_hash = annotator_hash(config, template, *(("constrained",) if config.constrained else ()))

    def request(record: dict[str, Any], sample: int, attempt: int) -> ChatRequest:
        answer = record["output"]
        if config.max_answer_chars and len(answer) > config.max_answer_chars:
            answer = answer[: config.max_answer_chars] + "\n[… truncated]"
        messages = [{"role": "user", "content": fill(template, prompt=judged_prompt(record), answer=answer)}]
        if config.system_prompt:
            messages.insert(0, {"role": "system", "content": config.system_prompt})
        # Each sampled response is graded on its own draw, even when two responses read the same: the
        # response's sample index joins the cache key, and every grade gets its own seed.
        response = record.get("sample", 0)
        key = stable_hash([config_hash, judged_prompt(record), answer, response, sample, attempt])
        seed = int(stable_hash([config.seed, response, sample, attempt])[:8], 16)
        extra = {"grammar": GRAMMARS[config.scale]} if config.constrained else None
        return ChatRequest(key, messages, config.temperature, config.max_tokens, seed=seed, extra_body=extra)

    cache = Path(config.cache) if config.cache else out_dir / "grade_cache.sqlite"
    slots: dict[tuple[int, int], dict[str, Any]] = {
        (i, s): {"grade": None, "raw": None, "error": None} for i in range(len(records)) for s in range(k)
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
                    grade = parse(result.text or "")
                    slots[slot].update(
                        raw=result.text, grade=grade, error=None if grade else "unparseable reply"
                    )
                    if grade is None:
                        retry.append(slot)
                pending = retry
            stats = client.stats.as_dict()
        rows = []
        for i, record in enumerate(records):
            parsed = [slots[(i, s)]["grade"] for s in range(k) if slots[(i, s)]["grade"] is not None]
            row = {
                "prompt_id": record["prompt_id"],
                "sample": record.get("sample", 0),
                "turn": _turn(record),
                "prompt": record["prompt"],
                "output": record["output"],
            }
            if absolute:
                row.update(label=_majority_label(parsed), labels=parsed)
            else:
                row.update(score=_mean(parsed), scores=parsed)
            row.update(errors=k - len(parsed), raw=[slots[(i, s)]["raw"] for s in range(k)])
            rows.append(row)
        with atomic_open(out_dir / "scores.jsonl") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        summary = _summary(config, rows, prompt_ids, k, absolute)
        from lima.core.names import display_name

        names = {str(display_name(r)) for r in records if display_name(r)}
        summary = {
            "model": names.pop() if len(names) == 1 else gen.stem,
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


def _summary(
    config: GradeConfig, rows: list[dict[str, Any]], prompt_ids: list[str], k: int, absolute: bool
) -> dict[str, Any]:
    per_prompt: dict[str, list[dict[str, Any]]] = {pid: [] for pid in prompt_ids}
    for row in rows:
        per_prompt[row["prompt_id"]].append(row)
    sampled = {
        # What was sampled (LIMA's ablation protocol: 5 responses per prompt, each graded once).
        "generation_samples": max(len(lines) for lines in per_prompt.values()) if per_prompt else 0,
        "grade_samples": k,
        "samples": k,
        "prompts": len(per_prompt),
        "lines": len(rows),
        "failed_samples": sum(r["errors"] for r in rows),
    }
    turns = sorted({r["turn"] for r in rows})
    if absolute:
        result = {"scale": "absolute", **sampled, **absolute_summary([r["label"] for r in rows])}
        # The mean/ci95 pair is the Likert view; an absolute grading has no mean.
        result.update(n=result["responses"], mean=None, ci95=[None, None])
        if len(turns) > 1:
            result["by_turn"] = {
                str(t): absolute_summary([r["label"] for r in rows if r["turn"] == t]) for t in turns
            }
        return result
    means = [
        m
        for lines in per_prompt.values()
        if (m := _mean([r["score"] for r in lines if r["score"] is not None])) is not None
    ]
    low, high = bootstrap_ci(means, config.bootstrap, config.seed)
    result = {
        "scale": "likert",
        "n": len(means),
        "errors": len(per_prompt) - len(means),
        "responses_graded": sum(1 for r in rows if r["score"] is not None),
        **sampled,
        "mean": round(sum(means) / len(means), 4) if means else None,
        "ci95": [round(low, 4), round(high, 4)] if means else [None, None],
        "histogram": {str(s): c for s, c in sorted(Counter(v for r in rows for v in r["scores"]).items())},
    }
    if len(turns) > 1:
        by_turn = {t: [r["score"] for r in rows if r["turn"] == t and r["score"] is not None] for t in turns}
        result["by_turn"] = {str(t): round(sum(v) / len(v), 4) if v else None for t, v in by_turn.items()}
    return result
