"""The single-answer grading engine: every generation line graded ``samples`` times by an LLM.

Three scales:

- ``likert`` (LIMA's ablation metric): helpfulness 1–6. A line's score is the mean of its parsed grades, a
  prompt's score the mean over its lines (the K sampled responses of LIMA's protocol: 5 responses per prompt,
  each graded once), and the summary the mean over prompts with a bootstrap 95% CI.
- ``absolute`` (LIMA §4.3, Figure 3): each response labelled Fail (does not meet the requirements of the
  prompt), Pass (meets them) or Excellent (an excellent response to the prompt); a response graded more than
  once takes its most frequent label (the lower one on a tie). The summary gives the percentages over parsed
  responses, the counts and the errors.
- ``mt_bench`` (FastChat's single-answer grading): 1–10 by FastChat's rating rule, the messages from the MT-Bench
  protocol's strategy (``prompts``: single-v1 / single-math-v1 by category and turn); the summary's mean is
  show_result's single-mode average, ``by_turn`` its per-turn means.

A line that continues a conversation (``history``) is graded in context — the grader sees the conversation so
far — so a multi-turn file grades each assistant turn where it was said (LIMA §4.4); the summary breaks the
results down by turn.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from lima.core.io import stable_hash
from lima.core.llm_client import ChatRequest, ChatResult, LLMClient
from lima.eval.config import GradeConfig
from lima.eval.metrics import bootstrap_ci
from lima.eval.parsers import parse_fastchat_rating, parse_likert
from lima.eval.reask import ask_until_parsed
from lima.eval.records import judged_prompt
from lima.eval.templates import clip, fill, load_template

DEFAULT_TEMPLATES = {"likert": "likert_helpfulness.txt", "absolute": "lima_absolute.txt"}
# mt_bench: FastChat's single-v1 family, whose messages come from the MT-Bench protocol's strategy (by category
# and turn); this is its turn-1 template, checked like the others before anything is written.
MT_BENCH_TEMPLATE = "mt_bench_single_v1.txt"
ABSOLUTE_LABELS = ("fail", "pass", "excellent")  # worst to best
_ABSOLUTE_LINE = re.compile(r"\b(?:grade|rating|label|verdict)\W{0,3}\s*\**\s*(fail|pass|excellent)\b", re.I)
_ABSOLUTE_WORD = re.compile(r"\b(fail|pass|excellent)\b", re.I)
# Replies a constrained grader may give (llama.cpp GBNF): built here, never taken from a config, so no grammar
# that reaches the server can be malformed.
GRAMMARS = {
    "absolute": 'root ::= "Fail" | "Pass" | "Excellent"',
    "likert": 'root ::= "Score: " [1-6]',
    "mt_bench": 'root ::= "Rating: [[" ([1-9] | "10") "]]"',
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


def grading_template(config: GradeConfig) -> str:
    """The grader's template (``{prompt}``, ``{answer}``): the config's, or the scale's default."""
    if config.scale == "mt_bench":
        return load_template(MT_BENCH_TEMPLATE, ("question", "answer"))
    return load_template(config.template or DEFAULT_TEMPLATES[config.scale], ("prompt", "answer"))


def grade_records(
    config: GradeConfig,
    records: list[dict[str, Any]],
    client: LLMClient,
    k: int,
    template: str,
    prompts: Any = None,
) -> list[dict[str, Any]]:
    """One row per generation line, each graded ``k`` times (unparseable replies re-asked): the score (mean
    of its grades) or the label (the most frequent), the grades, errors and raw replies. ``prompts``: a
    benchmark's strategy whose ``messages(record, answer)`` replaces the template (MT-Bench's single-v1)."""
    absolute = config.scale == "absolute"
    parse = {"absolute": parse_absolute, "likert": parse_likert, "mt_bench": parse_fastchat_rating}[
        config.scale
    ]

    def request(slot: tuple[int, int], attempt: int) -> ChatRequest:
        record, sample = records[slot[0]], slot[1]
        answer = clip(record["output"], config.max_answer_chars)
        if prompts is not None:
            messages = prompts.messages(record, answer)
        else:
            messages = [
                {"role": "user", "content": fill(template, prompt=judged_prompt(record), answer=answer)}
            ]
            if config.system_prompt:
                messages.insert(0, {"role": "system", "content": config.system_prompt})
        # Each sampled response is graded on its own draw, even when two responses read the same: the
        # response's sample index joins the draw, and every grade gets its own seed. The cache key is the
        # request as sent (seed included: lima.core.llm_client.request_key).
        response = record.get("sample", 0)
        seed = int(stable_hash([config.seed, response, sample, attempt])[:8], 16)
        extra = {"grammar": GRAMMARS[config.scale]} if config.constrained else None
        draw = f"{response}#{sample}#{attempt}"
        about = {"prompt_id": record["prompt_id"], "sample": response, "grade": sample, "attempt": attempt}
        return ChatRequest(
            draw, messages, config.temperature, config.max_tokens, seed=seed, extra_body=extra, about=about
        )

    slots: dict[tuple[int, int], dict[str, Any]] = {
        (i, s): {"grade": None, "raw": None, "error": None} for i in range(len(records)) for s in range(k)
    }

    def handle(slot: tuple[int, int], result: ChatResult, attempt: int) -> bool:
        if result.error is not None:
            slots[slot]["error"] = result.error
            return True
        grade = parse(result.text or "")
        slots[slot].update(
            raw=result.text, grade=grade, error=None if grade is not None else "unparseable reply"
        )
        return grade is not None

    ask_until_parsed(client, list(slots), request, handle, config.parse_retries, "grading")
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
    return rows


def grade_summary(
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
        "scale": config.scale,
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
