"""Pairwise LLM judging: every pair in both orders, the verdict read from the reply, unparseable replies
re-asked and then counted as errors (never ties), the two orders combined, and a summary with CIs.

Verdict modes (``JudgeConfig.verdict``):

- ``text``: free text, the **last** verdict token parsed (``lima.eval.parsers``);
- ``structured``: a JSON reply, reasoning first and then a verdict from a fixed enum, constrained by the
  server (llama.cpp: ``response_format`` json_object + schema, or a GBNF ``grammar``; vLLM and OpenAI:
  ``response_format`` json_schema, strict on OpenAI);
- ``logprobs``: a one-token A/B verdict whose ``top_logprobs`` give P(first) / (P(first) + P(second)), a soft
  preference per order (AlpacaEval 2's weighted annotator); the pair's preference is the mean of both orders.

A panel (``JudgeConfig.panel``) runs each member judge and merges their per-order verdicts by majority vote
or by the mean of soft preferences; it is then summarised and calibrated exactly like one judge.

    summary = run_judging(load_config("configs/judge/embedded_lima.yaml", JudgeConfig), a, b, out_dir)
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import atomic_open, stable_hash, write_json
from lima.core.llm_client import ChatRequest, ChatResult, LLMClient
from lima.eval.config import JudgeConfig
from lima.eval.io import judged_prompt
from lima.eval.parsers import (
    LOGPROB_LETTERS,
    PAIRWISE_PARSERS,
    Parsed,
    parse_logprobs,
    parse_structured,
    verdict_schema,
)
from lima.eval.stats import SCORE, length_controlled_win_rate
from lima.eval.summary import arena_hard_score, outcome_keys

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


# Fields that change replies only in the structured/logprobs modes; text-mode hashes stay as they were, so
# existing caches and stored calibrations keep their keys.
_VERDICT_FIELDS = ("verdict", "flavour", "grammar", "top_logprobs", "reasoning_max_chars", "parser")


def judge_config_hash(config: JudgeConfig, template: str | None = None) -> str:
    """The annotator hash of a judge (or panel): what its replies depend on. The judge cache and the stored
    calibrations are keyed by it."""
    if config.panel is not None:
        panel = config.panel
        return stable_hash(
            {
                "panel": [judge_config_hash(m) for m in panel.judges],
                "vote": panel.vote,
                "tie_margin": panel.tie_margin,
            }
        )
    if template is None:
        template = load_template(config.template, ("prompt", "answer_a", "answer_b"))
    if config.verdict == "text":
        return annotator_hash(config, template, "retry_temperature")
    return stable_hash(
        [
            annotator_hash(config, template, "retry_temperature"),
            {name: getattr(config, name) for name in _VERDICT_FIELDS},
        ]
    )


def judge_name(config: JudgeConfig) -> str:
    """The judge's model, or ``panel(m1, m2, …)``."""
    if config.panel is not None:
        return "panel(" + ", ".join(judge_name(m) for m in config.panel.judges) + ")"
    return config.endpoint.model


def is_soft(config: JudgeConfig) -> bool:
    """Whether the judge's preferences are probabilities (logprobs), not only 1 / 0.5 / 0."""
    if config.panel is not None:
        return config.panel.vote == "mean" and any(is_soft(m) for m in config.panel.judges)
    return config.verdict == "logprobs"


def read_grammar(value: str) -> str:
    """``grammar:`` is GBNF text or a path to a ``.gbnf`` file."""
    path = Path(value)
    if "::=" not in value:
        if not path.is_file():
            raise LimaError(f"grammar: {value!r} is neither a GBNF grammar (no '::=') nor a file")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LimaError(f"grammar: {path}: not UTF-8 text; save the grammar file as UTF-8") from None
    return value


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


LOGPROB_GRAMMAR = "root ::= " + " | ".join(f'"{letter}"' for letter in LOGPROB_LETTERS)
_NO_REPEAT_PENALTY = {"repeat_penalty": 1.0}  # llama.cpp's default 1.1 would penalise the prompt's own words


def _order_entry(order: str) -> dict[str, Any]:
    return {
        "order": order,
        "attempts": 0,
        "raw": None,  # the last reply; "replies" holds every attempt's
        "replies": [],
        "positional": None,
        "level": None,
        "p_first": None,  # P(the answer shown first is better): soft (logprobs) or 1 / 0.5 / 0
        "verdict": None,
        "error": None,
    }


class PairwiseJudge:
    """Runs a judge config (one judge or a panel) over pair items with an open :class:`LLMClient`.

    A panel member whose endpoint differs from ``client``'s gets its own client for the duration of
    :meth:`judge` (same cache file); its request counts are added to ``client.stats``.
    """

    def __init__(self, config: JudgeConfig, client: LLMClient | None) -> None:
        self.config = config
        self.client = client
        self.members = [PairwiseJudge(m, None) for m in config.panel.judges] if config.panel else []
        self.template = load_template(config.template, ("prompt", "answer_a", "answer_b"))
        self.parse = PAIRWISE_PARSERS[config.parser]
        self.config_hash = judge_config_hash(config, self.template)
        self.name = judge_name(config)
        self._mode = {} if self.members else self._mode_fields()

    def _mode_fields(self) -> dict[str, Any]:
        """The ChatRequest fields that ask this server for this verdict mode."""
        config, flavour = self.config, self.config.flavour
        grammar = None
        if config.grammar is not None:
            from lima.core.gbnf import validate_grammar

            grammar = validate_grammar(read_grammar(config.grammar), "grammar")
        if config.verdict == "structured":
            if flavour == "llamacpp":
                if grammar is not None:
                    return {"extra_body": {"grammar": grammar, **_NO_REPEAT_PENALTY}}
                # llama-cpp-python 0.3.x takes a schema inside json_object; its json_schema form is a 500.
                schema = verdict_schema(config.parser, config.reasoning_max_chars)
                return {
                    "response_format": {"type": "json_object", "schema": schema},
                    "extra_body": dict(_NO_REPEAT_PENALTY),
                }
            strict = flavour == "openai"  # strict mode has no maxLength
            schema = verdict_schema(config.parser, None if strict else config.reasoning_max_chars)
            spec: dict[str, Any] = {"name": "verdict", "schema": schema}
            if strict:
                spec["strict"] = True
            return {"response_format": {"type": "json_schema", "json_schema": spec}}
        if config.verdict == "logprobs":
            fields: dict[str, Any] = {"top_logprobs": config.top_logprobs, "max_tokens": 1}
            if flavour == "llamacpp":  # the chosen token is then always a letter (its logprob is reported)
                fields["extra_body"] = {"grammar": grammar or LOGPROB_GRAMMAR, **_NO_REPEAT_PENALTY}
            return fields
        return {}

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
        fields = {"max_tokens": self.config.max_tokens, **self._mode}
        return ChatRequest(key=key, messages=messages, temperature=temperature, **fields)

    def _parse(self, result: ChatResult) -> Parsed | None:
        if self.config.verdict == "logprobs":
            return parse_logprobs(result.logprobs)
        if self.config.verdict == "structured":
            return parse_structured(result.text or "", self.config.parser)
        return self.parse(result.text or "")

    def _unparsed(self) -> str:
        if self.config.verdict == "logprobs":
            return f"no {'/'.join(LOGPROB_LETTERS)} among the reply's top {self.config.top_logprobs} tokens"
        return "unparseable reply"

    def judge_orders(self, items: Sequence[PairItem], desc: str) -> dict[tuple[int, str], dict[str, Any]]:
        """Every item in both orders: ``{(index, order): entry}`` with the positional verdict and P(first)."""
        if self.members:
            return self._panel_orders(items, desc)
        assert self.client is not None, "PairwiseJudge needs a client"
        state = {(i, order): _order_entry(order) for i in range(len(items)) for order in ORDERS}
        pending = list(state)
        # Logprobs are read before sampling: a re-ask at another temperature would see the same numbers.
        retries = 0 if self.config.verdict == "logprobs" else self.config.parse_retries
        for attempt in range(retries + 1):
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
                parsed = self._parse(result)
                if parsed is None:
                    entry["error"] = self._unparsed()
                    retry.append(slot)
                    continue
                entry.update(
                    positional=parsed.verdict,
                    level=parsed.level,
                    p_first=round(getattr(parsed, "p_first", SCORE[parsed.verdict]), 6),
                    error=None,
                    verdict=_to_model(parsed.verdict, entry["order"]),
                )
            pending = retry
        return state

    def _panel_orders(self, items: Sequence[PairItem], desc: str) -> dict[tuple[int, str], dict[str, Any]]:
        panel = self.config.panel
        assert panel is not None and self.client is not None, "PairwiseJudge needs a client"
        opened: list[LLMClient] = []
        states = []
        try:
            for k, member in enumerate(self.members):
                member.client = self._client_for(member.config, opened)
                states.append(member.judge_orders(items, f"{desc} [judge {k + 1}/{len(self.members)}]"))
        finally:
            for client in opened:
                client.close()
                _add_stats(self.client.stats, client.stats)
        state = {}
        for slot in states[0]:
            votes = [s[slot] for s in states]
            entry = {**_order_entry(slot[1]), "members": votes, "attempts": max(v["attempts"] for v in votes)}
            ok = [v for v in votes if v["positional"] is not None]
            if not ok:
                errors = "; ".join(str(v["error"]) for v in votes)
                entry["error"] = f"no panel member gave a verdict ({errors})"
            elif panel.vote == "majority":
                ranked = Counter(v["positional"] for v in ok).most_common()
                positional = ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else "tie"
                level = f"{ranked[0][1]}/{len(votes)} {ranked[0][0]}"
                entry.update(positional=positional, level=level, p_first=SCORE[positional])
            else:
                p_first = sum(v["p_first"] for v in ok) / len(ok)
                positional = (
                    "tie" if abs(p_first - 0.5) <= panel.tie_margin else "A" if p_first > 0.5 else "B"
                )
                entry.update(
                    positional=positional, level=f"mean P(A)={p_first:.3f}", p_first=round(p_first, 6)
                )
            if entry["positional"] is not None:
                entry["verdict"] = _to_model(entry["positional"], slot[1])
            state[slot] = entry
        return state

    def _client_for(self, config: JudgeConfig, opened: list[LLMClient]) -> LLMClient:
        assert self.client is not None
        for client in (self.client, *opened):
            if client.endpoint == config.endpoint:
                return client
        cache = self.client.cache.path if self.client.cache is not None else None
        client = LLMClient(config.endpoint, cache, progress=self.client.progress)
        opened.append(client)
        return client

    def _pair_verdict(self, ab: dict[str, Any], ba: dict[str, Any], preference: float) -> str:
        """Soft judges decide on the preference averaged over both orders, which cancels a constant position
        bias (a judge that always leans to the first answer still moves with the answers); the others combine
        the two orders' verdicts (strict / lenient)."""
        if is_soft(self.config):
            return _soft_verdict(preference, self.config.tie_margin)
        return combine(ab["verdict"], ba["verdict"], self.config.combine)

    def judge(self, items: Sequence[PairItem], desc: str = "judging") -> list[dict[str, Any]]:
        """One judgment dict per item, in order; each keeps the raw reply of every order."""
        state = self.judge_orders(items, desc)
        judgments = []
        for i, item in enumerate(items):
            ab, ba = state[(i, "AB")], state[(i, "BA")]
            ok = ab["verdict"] is not None and ba["verdict"] is not None
            preference = round((ab["p_first"] + 1 - ba["p_first"]) / 2, 6) if ok else None
            judgments.append(
                {
                    "prompt_id": item.id,
                    "prompt": item.prompt,
                    "output_a": item.answer_a,
                    "output_b": item.answer_b,
                    "len_a": len(item.answer_a),
                    "len_b": len(item.answer_b),
                    "verdict": self._pair_verdict(ab, ba, preference) if ok else None,
                    "consistent": (ab["verdict"] == ba["verdict"]) if ok else None,
                    # P(model A's answer is better), both orders averaged: AlpacaEval 2's soft preference.
                    "preference": preference,
                    "error": None
                    if ok
                    else "; ".join(f"{e['order']}: {e['error']}" for e in (ab, ba) if e["error"]),
                    "orders": [ab, ba],
                    **({"meta": item.meta} if item.meta else {}),
                }
            )
        return judgments


def _soft_verdict(preference: float, margin: float) -> str:
    return "A" if preference > 0.5 + margin else "B" if preference < 0.5 - margin else "tie"


def _add_stats(total: Any, part: Any) -> None:
    for f in dataclasses.fields(part):
        setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))


def summarize(judgments: list[dict[str, Any]], config: JudgeConfig) -> dict[str, Any]:
    """Win/tie/loss, win rate and CI, position consistency, errors, lengths, length-controlled win rate."""
    ok = [j for j in judgments if j["verdict"] is not None]
    verdicts = [j["verdict"] for j in ok]
    prefs = [j.get("preference") for j in ok] if is_soft(config) else []
    soft = prefs if prefs and None not in prefs else None  # the keys `lima summarize` gives, by the same code
    summary = outcome_keys(verdicts, soft, config.bootstrap, config.seed)
    # five-level verdicts in both orders: arena-hard-auto's weighted score too
    summary.update(arena_hard_score(ok, resamples=config.bootstrap, seed=config.seed) or {})
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
        verdict_mode="panel" if config.panel is not None else config.verdict,
    )
    return summary


def _first_samples(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pairwise judging compares one answer per prompt: sample 0 of a file with K samples per prompt."""
    return [r for r in records if r.get("sample", 0) in (0, None)]


def _model_name(records: list[dict[str, Any]], path: Path) -> str:
    from lima.core.names import display_name

    names = {str(display_name(r)) for r in records if display_name(r)}
    return names.pop() if len(names) == 1 else path.stem


def run_judging(
    config: JudgeConfig, gen_a: Path, gen_b: Path, out_dir: Path, limit: int | None = None
) -> dict[str, Any]:
    """Judge generations A against B; writes judgments.jsonl, summary.json, winrate.png, report.html."""
    from lima.core.manifest import RunManifest
    from lima.eval.io import pair_generations, read_generations
    from lima.eval.report import winrate_chart, write_judge_report

    gen_a, gen_b, out_dir = Path(gen_a), Path(gen_b), Path(out_dir)
    records_a = _first_samples(read_generations(gen_a, config.allow_empty))
    records_b = _first_samples(read_generations(gen_b, config.allow_empty))
    from lima.eval.formats import detect

    if detect(gen_b) is not None:  # a leaderboard model's answers cover the whole benchmark: keep A's prompts
        ids_a = {r["prompt_id"] for r in records_a}
        records_b = [r for r in records_b if r["prompt_id"] in ids_a]
    if not {r["prompt_id"] for r in records_a} & {r["prompt_id"] for r in records_b}:
        raise LimaError(
            f"{gen_a} and {gen_b}: no prompt in common, so nothing to judge; "
            "generate both from the same prompt file"
        )
    pairs = pair_generations(records_a, records_b, gen_a, gen_b)
    if limit is not None:
        pairs = pairs[:limit]
    name_a, name_b = _model_name(records_a, gen_a), _model_name(records_b, gen_b)
    if name_a == name_b:
        name_a, name_b = f"{name_a} (A)", f"{name_b} (B)"
    from lima.eval.formats.mt_bench import judge_class, turn_meta

    items = [
        PairItem(a["prompt_id"], judged_prompt(a), a["output"], b["output"], turn_meta(a, b))
        for a, b in pairs
    ]
    cache = Path(config.cache) if config.cache else out_dir / "judge_cache.sqlite"
    with RunManifest(out_dir, "judge", config, inputs=[gen_a, gen_b], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            # MT-Bench's pair-v2 template: later turns judged as FastChat shows them (each model's conversation)
            judge = judge_class(config)(config, client)
            try:
                judgments = judge.judge(items, desc=f"judging {name_a} vs {name_b}")
            finally:
                manifest.update(client=client.stats.as_dict())
            stats = client.stats.as_dict()
        summary = {
            "model_a": name_a,
            "model_b": name_b,
            "judge": judge_name(config),
            "template": "panel" if config.panel is not None else config.template,
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
