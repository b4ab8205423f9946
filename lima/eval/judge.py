"""Pairwise LLM judging: every pair in both orders, the last verdict token parsed, unparseable replies
re-asked and then counted as errors (never ties), the two orders combined, and a summary with CIs.

    summary = run_judging(load_config("configs/judge/embedded_lima.yaml", JudgeConfig), a, b, out_dir)
"""

from __future__ import annotations

import importlib.resources
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import atomic_open, stable_hash, write_json
from lima.core.llm_client import ChatRequest, ChatResult, LLMClient
from lima.eval.config import JudgeConfig
from lima.eval.io import judged_prompt
from lima.eval.parsers import PAIRWISE_PARSERS
from lima.eval.stats import length_controlled_win_rate
from lima.eval.summary import outcome_keys

ORDERS = ("AB", "BA")  # AB: model A's answer shown first


@dataclass
class PairItem:
    """One prompt with the two answers to compare (A and B are models, not positions)."""

    id: str
    prompt: str
    answer_a: str
    answer_b: str
    meta: dict[str, Any] = field(default_factory=dict)


def load_template(name: str, placeholders: Sequence[str]) -> str:
    """A prompt template: a path, or a file name inside ``lima/eval/prompts``."""
    path = Path(name)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        folder = importlib.resources.files("lima.eval") / "prompts"
        candidate = folder / (name if name.endswith(".txt") else f"{name}.txt")
        if not candidate.is_file():
            shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".txt"))
            raise LimaError(
                f"template {name!r}: no such file, nor a shipped template (shipped: {', '.join(shipped)})"
            )
        text = candidate.read_text(encoding="utf-8")
    missing = [p for p in placeholders if "{" + p + "}" not in text]
    if missing:
        raise LimaError(
            f"template {name!r}: missing placeholder(s) {', '.join('{' + p + '}' for p in missing)}"
        )
    return text


def fill(template: str, **values: str) -> str:
    """Substitute ``{name}`` placeholders literally (answers may contain braces, so no str.format)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _clip(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit] + "\n[… truncated]"


def annotator_hash(config: Any, template: str, *fields: str) -> str:
    """What changes an LLM annotator's replies (judge or grader); concurrency, timeouts and prices do not."""
    endpoint = config.endpoint
    common = ("system_prompt", "temperature", "max_tokens", "max_answer_chars", *fields)
    return stable_hash(
        {
            "base_url": endpoint.base_url,
            "model": endpoint.model,
            "embedded_model": endpoint.embedded_model if endpoint.is_embedded else None,
            "template": template,
            **{name: getattr(config, name) for name in common},
        }
    )


def judge_config_hash(config: JudgeConfig, template: str) -> str:
    return annotator_hash(config, template, "retry_temperature")


def combine(first: str, second: str, mode: str = "strict") -> str:
    """Merge the model-space verdicts of the two orders. strict: agree -> it, else tie;
    lenient: also a win in one order and a tie in the other -> that win."""
    if first == second:
        return first
    if mode == "lenient" and "tie" in (first, second):
        return first if second == "tie" else second
    return "tie"


def _to_model(positional: str, order: str) -> str:
    """A positional verdict (A = shown first) in model terms for ``order``."""
    if positional == "tie" or order == "AB":
        return positional
    return "B" if positional == "A" else "A"


class PairwiseJudge:
    """Runs a judge config over pair items with an open :class:`LLMClient`."""

    def __init__(self, config: JudgeConfig, client: LLMClient) -> None:
        self.config = config
        self.client = client
        self.template = load_template(config.template, ("prompt", "answer_a", "answer_b"))
        self.parse = PAIRWISE_PARSERS[config.parser]
        self.config_hash = judge_config_hash(config, self.template)

    def _request(self, item: PairItem, order: str, attempt: int) -> ChatRequest:
        a = _clip(item.answer_a, self.config.max_answer_chars)
        b = _clip(item.answer_b, self.config.max_answer_chars)
        first, second = (a, b) if order == "AB" else (b, a)
        messages = [
            {
                "role": "user",
                "content": fill(self.template, prompt=item.prompt, answer_a=first, answer_b=second),
            }
        ]
        if self.config.system_prompt:
            messages.insert(0, {"role": "system", "content": self.config.system_prompt})
        key = stable_hash([self.config_hash, item.prompt, first, second, order, attempt])
        temperature = self.config.temperature if attempt == 0 else self.config.retry_temperature
        return ChatRequest(
            key=key, messages=messages, temperature=temperature, max_tokens=self.config.max_tokens
        )

    def judge(self, items: Sequence[PairItem], desc: str = "judging") -> list[dict[str, Any]]:
        """One judgment dict per item, in order; each keeps the raw reply of every order."""
        state: dict[tuple[int, str], dict[str, Any]] = {
            (i, order): {
                "order": order,
                "attempts": 0,
                "raw": None,  # the last reply; "replies" holds every attempt's
                "replies": [],
                "positional": None,
                "level": None,
                "verdict": None,
                "error": None,
            }
            for i in range(len(items))
            for order in ORDERS
        }
        pending = list(state)
        for attempt in range(self.config.parse_retries + 1):
            if not pending:
                break
            requests = [self._request(items[i], order, attempt) for i, order in pending]
            label = desc if attempt == 0 else f"{desc} (re-ask {attempt})"
            results: list[ChatResult] = self.client.complete_many(requests, desc=label)
            retry = []
            for slot, result in zip(pending, results, strict=True):
                entry = state[slot]
                entry["attempts"] = attempt + 1
                if result.error is not None:
                    entry["error"] = result.error
                    continue
                entry["raw"] = result.text
                entry["replies"].append(result.text)
                parsed = self.parse(result.text or "")
                if parsed is None:
                    entry["error"] = "unparseable reply"
                    retry.append(slot)
                else:
                    entry.update(
                        positional=parsed.verdict,
                        level=parsed.level,
                        error=None,
                        verdict=_to_model(parsed.verdict, entry["order"]),
                    )
            pending = retry
        judgments = []
        for i, item in enumerate(items):
            ab, ba = state[(i, "AB")], state[(i, "BA")]
            ok = ab["verdict"] is not None and ba["verdict"] is not None
            judgments.append(
                {
                    "prompt_id": item.id,
                    "prompt": item.prompt,
                    "output_a": item.answer_a,
                    "output_b": item.answer_b,
                    "len_a": len(item.answer_a),
                    "len_b": len(item.answer_b),
                    "verdict": combine(ab["verdict"], ba["verdict"], self.config.combine) if ok else None,
                    "consistent": (ab["verdict"] == ba["verdict"]) if ok else None,
                    "error": None
                    if ok
                    else "; ".join(f"{e['order']}: {e['error']}" for e in (ab, ba) if e["error"]),
                    "orders": [ab, ba],
                    **({"meta": item.meta} if item.meta else {}),
                }
            )
        return judgments


def summarize(judgments: list[dict[str, Any]], config: JudgeConfig) -> dict[str, Any]:
    """Win/tie/loss, win rate and CI, position consistency, errors, lengths, length-controlled win rate."""
    ok = [j for j in judgments if j["verdict"] is not None]
    verdicts = [j["verdict"] for j in ok]
    summary = outcome_keys(verdicts, None, config.bootstrap, config.seed)  # the keys `lima summarize` gives
    decisive_orders = [o for j in ok for o in j["orders"] if o["positional"] != "tie"]
    first_wins = sum(o["positional"] == "A" for o in decisive_orders)
    mean = lambda xs: round(sum(xs) / len(xs), 1) if xs else None  # noqa: E731
    summary.update(
        prompts=len(judgments),
        errors=len(judgments) - len(ok),
        error_orders=sum(o["verdict"] is None for j in judgments for o in j["orders"]),
        position_consistency=round(100 * sum(j["consistent"] for j in ok) / len(ok), 2) if ok else None,
        first_position_pick_pct=round(100 * first_wins / len(decisive_orders), 2)
        if decisive_orders
        else None,
        mean_len_a=mean([j["len_a"] for j in judgments]),
        mean_len_b=mean([j["len_b"] for j in judgments]),
        lc_win_rate=round(
            100
            * length_controlled_win_rate(
                [{"A": 1.0, "tie": 0.5, "B": 0.0}[v] for v in verdicts],
                [j["len_a"] for j in ok],
                [j["len_b"] for j in ok],
            ),
            2,
        )
        if ok
        else None,
        combine=config.combine,
    )
    return summary


def _model_name(records: list[dict[str, Any]], path: Path) -> str:
    names = {str(r.get("model")) for r in records if r.get("model")}
    return names.pop() if len(names) == 1 else path.stem


def run_judging(
    config: JudgeConfig, gen_a: Path, gen_b: Path, out_dir: Path, limit: int | None = None
) -> dict[str, Any]:
    """Judge generations A against B; writes judgments.jsonl, summary.json, winrate.png, report.html."""
    from lima.core.manifest import RunManifest
    from lima.eval.io import pair_generations, read_generations
    from lima.eval.report import winrate_chart, write_judge_report

    gen_a, gen_b, out_dir = Path(gen_a), Path(gen_b), Path(out_dir)
    records_a = read_generations(gen_a, config.allow_empty)
    records_b = read_generations(gen_b, config.allow_empty)
    pairs = pair_generations(records_a, records_b, gen_a, gen_b)
    if limit is not None:
        pairs = pairs[:limit]
    name_a, name_b = _model_name(records_a, gen_a), _model_name(records_b, gen_b)
    if name_a == name_b:
        name_a, name_b = f"{name_a} (A)", f"{name_b} (B)"
    items = [PairItem(a["prompt_id"], judged_prompt(a), a["output"], b["output"]) for a, b in pairs]
    cache = Path(config.cache) if config.cache else out_dir / "judge_cache.sqlite"
    with RunManifest(out_dir, "judge", config, inputs=[gen_a, gen_b], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            judge = PairwiseJudge(config, client)
            try:
                judgments = judge.judge(items, desc=f"judging {name_a} vs {name_b}")
            finally:
                manifest.update(client=client.stats.as_dict())
            stats = client.stats.as_dict()
        summary = {
            "model_a": name_a,
            "model_b": name_b,
            "judge": config.endpoint.model,
            "template": config.template,
            **summarize(judgments, config),
            "client": stats,
        }
        from lima.eval.calibrate import calibration_note, find_calibration

        summary["calibration"] = find_calibration(config)  # how far this judge agrees with humans, if known
        summary["judge_agreement"] = calibration_note(summary["calibration"])
        with atomic_open(out_dir / "judgments.jsonl") as fh:
            for judgment in judgments:
                fh.write(json.dumps(judgment, ensure_ascii=False) + "\n")
        write_json(out_dir / "summary.json", summary)
        winrate_chart({name_b: summary}, out_dir / "winrate.png", model=name_a)
        write_judge_report(summary, judgments, out_dir / "report.html", out_dir / "winrate.png")
        manifest.update(
            outputs=sorted(os.listdir(out_dir)),
            summary={k: summary[k] for k in ("n", "errors", "win_rate", "ci95", "lc_win_rate")},
        )
    return summary
