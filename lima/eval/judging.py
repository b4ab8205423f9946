"""The pairwise judging engine: every pair in both orders, the verdict read from the reply, unparseable replies
re-asked and then counted as errors (never ties), and the two orders combined.

Verdict modes (``JudgeConfig.verdict``):

- ``text``: free text, the **last** verdict token parsed (``lima.eval.parsers``);
- ``structured``: a JSON reply, reasoning first and then a verdict from a fixed enum, constrained by the
  server (llama.cpp: ``response_format`` json_object + schema, or a GBNF ``grammar``; vLLM and OpenAI:
  ``response_format`` json_schema, strict on OpenAI);
- ``logprobs``: a one-token A/B verdict whose ``top_logprobs`` give P(first) / (P(first) + P(second)), a soft
  preference per order (AlpacaEval 2's weighted annotator); the pair's preference is the mean of both orders.

A panel (``JudgeConfig.panel``) runs each member judge and merges their per-order verdicts by majority vote
or by the mean of soft preferences; it is then summarised and calibrated exactly like one judge.

What a benchmark changes is passed in as a small strategy object, never a file format: ``prompts`` (a
:class:`PairPrompt`) gives the messages for a pair in an order (MT-Bench's pair-v2 multi-turn prompt lives in
``lima.eval.protocols``).

Layer: engines. Imports the bottom layer, metrics and ``lima.core``; never an adapter, protocol or runner.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from lima.core.io import stable_hash
from lima.core.llm_client import ChatRequest, ChatResult, LLMClient
from lima.eval.config import JudgeConfig
from lima.eval.metrics import SCORE, combine
from lima.eval.parsers import (
    LOGPROB_LETTERS,
    PAIRWISE_PARSERS,
    Parsed,
    parse_logprobs,
    parse_structured,
    verdict_schema,
)
from lima.eval.reask import ask_until_parsed
from lima.eval.records import PairItem
from lima.eval.templates import clip, fill, load_template, read_grammar

ORDERS = ("AB", "BA")  # AB: model A's answer shown first
PAIR_PLACEHOLDERS = ("prompt", "answer_a", "answer_b")


class PairPrompt(Protocol):
    """What a judge is shown for one pair in one order (``first`` / ``second``: the answers as shown)."""

    def messages(self, item: PairItem, order: str, first: str, second: str) -> list[dict[str, str]]: ...


@dataclasses.dataclass(frozen=True)
class TemplatePrompt:
    """The judge config's template (``{prompt}``, ``{answer_a}``, ``{answer_b}``) after its system prompt."""

    template: str
    system_prompt: str | None = None

    def messages(self, item: PairItem, order: str, first: str, second: str) -> list[dict[str, str]]:
        content = fill(self.template, prompt=item.prompt, answer_a=first, answer_b=second)
        messages = [{"role": "user", "content": content}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages


def annotator_hash(config: Any, template: str, *fields: str) -> str:
    """The identity of an LLM annotator (judge or grader): what its replies depend on; concurrency, timeouts
    and prices do not. Stored calibrations are filed under it (request caching uses
    :func:`lima.core.llm_client.request_key`, the request itself)."""
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
# stored calibrations keep their keys.
_VERDICT_FIELDS = ("verdict", "flavour", "grammar", "top_logprobs", "reasoning_max_chars", "parser")


def judge_hash(config: JudgeConfig, template: str | None = None) -> str:
    """The annotator hash of a judge (or panel). Stored calibrations are filed under it."""
    if config.panel is not None:
        panel = config.panel
        return stable_hash(
            # "tie_margin": the old field name, kept so that stored calibrations keep their keys
            {
                "panel": [judge_hash(m) for m in panel.judges],
                "vote": panel.vote,
                "tie_margin": panel.order_tie_margin,
            }
        )
    if template is None:
        template = load_template(config.template, PAIR_PLACEHOLDERS)
    if config.verdict == "text":
        return annotator_hash(config, template, "retry_temperature")
    fields = {name: getattr(config, name) for name in _VERDICT_FIELDS}
    if config.grammar is not None:  # a grammar file's text, not its path, decides the replies
        fields["grammar"] = read_grammar(config.grammar)
    return stable_hash([annotator_hash(config, template, "retry_temperature"), fields])


judge_config_hash = judge_hash  # the old name, kept importable


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


def _soft_verdict(preference: float, margin: float) -> str:
    return "A" if preference > 0.5 + margin else "B" if preference < 0.5 - margin else "tie"


def _add_stats(total: Any, part: Any) -> None:
    for f in dataclasses.fields(part):
        setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))


class PairwiseJudge:
    """Runs a judge config (one judge or a panel) over pair items with an open :class:`LLMClient`.

    ``prompts`` builds each request's messages (default: the config's template); panel members use it too.
    A panel member whose endpoint differs from ``client``'s gets its own client for the duration of
    :meth:`judge` (same cache file); its request counts are added to ``client.stats``.
    """

    def __init__(self, config: JudgeConfig, client: LLMClient | None, prompts: Any = None) -> None:
        self.config = config
        self.client = client
        self.template = load_template(config.template, PAIR_PLACEHOLDERS)
        self.prompts = prompts if prompts is not None else TemplatePrompt(self.template, config.system_prompt)
        self.members = (
            [PairwiseJudge(m, None, self._member_prompts(m, prompts)) for m in config.panel.judges]
            if (config.panel)
            else []
        )
        self.parse = PAIRWISE_PARSERS[config.parser]
        self.config_hash = judge_hash(config, self.template)
        self.name = judge_name(config)
        self._mode = {} if self.members else self._mode_fields()

    @staticmethod
    def _member_prompts(member: JudgeConfig, prompts: Any) -> Any:
        rebind = getattr(prompts, "for_judge", None)  # a strategy that wraps the judge's own template
        return rebind(member) if rebind is not None else None

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
        a = clip(item.answer_a, self.config.max_answer_chars)
        b = clip(item.answer_b, self.config.max_answer_chars)
        first, second = (a, b) if order == "AB" else (b, a)
        messages = self.prompts.messages(item, order, first, second)
        temperature = self.config.temperature if attempt == 0 else self.config.retry_temperature
        fields = {"max_tokens": self.config.max_tokens, **self._mode}
        # The cache key is the request itself (request_key); the caller's key adds only the draw: a re-ask of
        # the same messages at the same temperature must not be answered with the reply it re-asks.
        about = {"prompt_id": item.id, "order": order, "attempt": attempt}
        return ChatRequest(
            key=f"{order}#{attempt}", messages=messages, temperature=temperature, about=about, **fields
        )

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

        def handle(slot: tuple[int, str], result: ChatResult, attempt: int) -> bool:
            entry = state[slot]
            entry["attempts"] = attempt + 1
            if result.error is not None:
                entry["error"] = result.error
                return True
            entry["raw"] = result.text
            entry["replies"].append(result.text)
            parsed = self._parse(result)
            if parsed is None:
                entry["error"] = self._unparsed()
                return False
            entry.update(
                positional=parsed.verdict,
                level=parsed.level,
                p_first=round(getattr(parsed, "p_first", SCORE[parsed.verdict]), 6),
                error=None,
                verdict=_to_model(parsed.verdict, entry["order"]),
            )
            return True

        # Logprobs are read before sampling: a re-ask at another temperature would see the same numbers.
        retries = 0 if self.config.verdict == "logprobs" else self.config.parse_retries
        ask_until_parsed(
            self.client, list(state), lambda s, k: self._request(items[s[0]], s[1], k), handle, retries, desc
        )
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
                    "tie" if abs(p_first - 0.5) <= panel.order_tie_margin else "A" if p_first > 0.5 else "B"
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
        client = self.client.sibling(config.endpoint)  # same cache file (a dry run: same request list)
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
