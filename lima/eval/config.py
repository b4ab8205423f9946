"""Config schemas of the evaluation stage: ``configs/generate``, ``configs/judge``, ``configs/grade``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lima.core.config import Config
from lima.core.endpoint import EndpointConfig

_WARNED: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """A deprecation note on stderr, once per process (an old config value still works, under its new name)."""
    if key not in _WARNED:
        _WARNED.add(key)
        import sys

        print(f"warning: {message}", file=sys.stderr)


PairParser = Literal["lima_3way", "last_tag", "arena_hard", "arena_hard_v01", "arena_hard_v2", "fastchat"]
# each Arena-Hard version's verdict rule (lima.eval.parsers)
ARENA_HARD_PARSERS = {"0.1": "arena_hard_v01", "2.0": "arena_hard_v2"}

# Old config values that still work, mapped to their new names (with a warning).
PARSER_ALIASES = {"mtbench": "last_tag"}


class DecodingConfig(Config):
    """LIMA's decoding by default: nucleus p=0.9, temperature 0.7, repetition penalty 1.2, ≤2,048 tokens."""

    max_new_tokens: int = Field(2048, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    repetition_penalty: float = Field(1.2, gt=0)
    do_sample: bool = Field(True, description="false: greedy decoding (temperature and top_p unused)")
    seed: int = Field(
        0, description="base seed; each response samples with a seed from (seed, prompt_id, sample)"
    )
    samples: int = Field(
        1, ge=1, le=100, description="responses per prompt, each with its own seed (LIMA's ablations: 5)"
    )

    @property
    def sampling(self) -> bool:
        """Whether tokens are drawn at random (temperature 0 is greedy, as vLLM and OpenAI read it)."""
        return self.do_sample and self.temperature > 0


class GenerateConfig(Config):
    """``lima generate``: ``decoding.samples`` responses per test prompt (LIMA: 1; its ablations: 5)."""

    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    model: str = Field(
        "embedded:smollm2-135m-instruct", description="spec, checkpoint dir, or endpoint model"
    )
    name: str | None = Field(
        None,
        description="what generations, reports, exports and charts call the model (default: short, "
        "from model: `epoch-2 of runs/demo`)",
    )
    prompts: str = Field(
        "../shared/data/lima/lima_test_300.jsonl", description="prompt file (see prompt_format)"
    )
    prompt_format: Literal["auto", "lima_test", "records", "text", "generations"] = "auto"
    decoding: DecodingConfig = DecodingConfig()
    system_prompt: str | None = None
    batch_size: int = Field(8, ge=1, description="responses per generate() call (transformers backend)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str | None = Field(None, description="cuda, cpu, ... (default: cuda when available)")
    endpoint: EndpointConfig | None = Field(None, description="openai backend: where to send the prompts")
    openai_server: Literal["vllm", "llamacpp", "openai"] | None = Field(
        None,
        description="openai backend: the server behind the endpoint, which decides how the repetition penalty "
        "and disabled top-k are sent (vLLM: repetition_penalty, llama.cpp: repeat_penalty, OpenAI: neither); "
        "default llamacpp for base_url: embedded, otherwise required",
    )
    openai_extra_body: dict[str, Any] = Field(
        default_factory=dict, description="more request fields for the openai backend (sent as given)"
    )
    allow_empty: bool = Field(False, description="keep empty outputs instead of failing the run")


class JudgeConfig(Config):
    """``lima judge``: pairwise verdicts from an LLM judge, every pair in both orders."""

    endpoint: EndpointConfig = EndpointConfig()
    template: str = Field("lima_3way.txt", description="a file in lima/eval/prompts/ or a path")
    parser: PairParser = Field(
        "lima_3way",
        description="lima_3way; last_tag: the last [[A]]/[[B]]/[[C]] tag (was `mtbench`, still accepted); "
        "fastchat: FastChat's tag precedence (MT-Bench's own rule); arena_hard: the last five-level [[A>>B]] …; "
        "arena_hard_v01 / arena_hard_v2: arena-hard-auto's own rule of that version",
    )
    arena_hard_version: Literal["0.1", "2.0"] | None = Field(
        None,
        description="Arena-Hard run as arena-hard-auto runs that version: its system prompt(s), verdict rule, "
        "null-game rule, score and interval (None: not an Arena-Hard judge)",
    )
    system_prompt: str | None = None
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(512, ge=1)
    parse_retries: int = Field(2, ge=0, le=10, description="re-asks after an unparseable reply")
    retry_temperature: float = Field(0.7, ge=0, description="a re-ask at temperature 0 would repeat itself")
    combine: Literal["strict", "lenient"] = Field(
        "strict",
        description="strict: the two orders agree -> that verdict, otherwise tie; "
        "lenient: a win in one order and a tie in the other -> win",
    )
    max_answer_chars: int | None = Field(None, ge=1, description="truncate long answers to fit the context")
    allow_empty: bool = Field(False, description="judge empty outputs instead of failing")
    bootstrap: int = Field(1000, ge=100)
    seed: int = 0
    cache: str | None = Field(None, description="SQLite cache path (default OUT/judge_cache.sqlite)")
    verdict: Literal["text", "structured", "logprobs"] = Field(
        "text",
        description="text: free text, the last verdict token parsed; structured: a JSON reply (reasoning, "
        "then a verdict from a fixed enum) that the server constrains; logprobs: a one-token A/B verdict "
        "whose top_logprobs give a soft preference (AlpacaEval 2's weighted annotator)",
    )
    server: Literal["llamacpp", "vllm", "openai"] | None = Field(
        None,
        description="the endpoint's server, which decides how structured/logprobs requests are sent; "
        "required for those modes (never guessed), implied by base_url: embedded (llamacpp)",
    )
    grammar: str | None = Field(
        None,
        description="llamacpp only: a GBNF grammar (text, or a path to a .gbnf file) that constrains the "
        "reply instead of the JSON schema (structured) or the A|B grammar (logprobs)",
    )
    top_logprobs: int = Field(20, ge=2, le=20, description="logprobs: alternatives read per token")
    tie_margin: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="soft judges (logprobs, panels with vote: mean): a pair's verdict comes from its preference "
        "P(A better), averaged over both orders: A above 0.5 + margin, B below 0.5 - margin, else a tie "
        "(AlpacaEval 2's discrete win rate at 0); `combine` applies to the other judges",
    )
    reasoning_max_chars: int | None = Field(
        400,
        ge=1,
        description="structured: maxLength of the reasoning (llamacpp, vllm; OpenAI's strict mode has "
        "none), so the verdict fits in max_tokens",
    )
    panel: PanelConfig | None = Field(
        None, description="a panel of judges whose verdicts are combined (the fields above then unused)"
    )
    calibration_labels: str | None = Field(
        None,
        description="the labels file whose stored calibration of this judge its runs show (matched by "
        "SHA-256); default: the largest usable stored one, named in the summary",
    )
    questions: str | None = Field(
        None,
        description="a benchmark's question.jsonl, for each question's category. MT-Bench: FastChat's (the "
        "pair-v2 family, template mt_bench_pair_v2.txt, needs it to judge math, reasoning and coding by "
        "reference); Arena-Hard v2: arena-hard-auto's (the system prompt is picked by category)",
    )
    references: str | None = Field(
        None,
        description="MT-Bench: FastChat's reference_answer/*.jsonl (gpt-4.jsonl), the reference answers of "
        "pair-math-v1 and pair-math-v1-multi-turn",
    )

    @field_validator("parser", mode="before")
    @classmethod
    def _renamed_parser(cls, value: Any) -> Any:
        if value in PARSER_ALIASES:
            new = PARSER_ALIASES[value]
            warn_once(
                f"parser:{value}",
                f"parser: {value} is now called {new} (it reads the last [[A]]/[[B]]/[[C]] tag; MT-Bench's own "
                f"rule is parser: fastchat); {value} still works",
            )
            return new
        return value

    @field_validator("arena_hard_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 0.1 / 2.0 / 2 as a number
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {0.1: "0.1", 2.0: "2.0"}.get(float(value), str(value))
        return {"2": "2.0", "v2": "2.0", "v0.1": "0.1"}.get(value, value) if isinstance(value, str) else value

    @property
    def flavour(self) -> str | None:
        """The server flavour requests are shaped for (None: plain text requests)."""
        return "llamacpp" if self.endpoint.is_embedded else self.server

    @model_validator(mode="after")
    def _check_verdict_mode(self) -> JudgeConfig:
        if self.arena_hard_version is not None:
            parser = ARENA_HARD_PARSERS[self.arena_hard_version]
            if self.parser != parser or self.panel is not None or self.verdict != "text":
                raise ValueError(
                    f"arena_hard_version: {self.arena_hard_version} reads verdicts as arena-hard-auto "
                    f"{self.arena_hard_version} does: set parser: {parser} and verdict: text, without a panel"
                )
        if self.panel is not None:
            return self
        if self.endpoint.is_embedded and self.server not in (None, "llamacpp"):
            raise ValueError(f"server: base_url: embedded is a llamacpp server, not {self.server!r}")
        if self.verdict != "text" and self.flavour is None:
            raise ValueError(
                f"server: verdict: {self.verdict} needs the endpoint's server named (llamacpp, vllm or "
                "openai): each constrains output differently and lima does not guess"
            )
        if self.grammar is not None and (self.verdict == "text" or self.flavour != "llamacpp"):
            raise ValueError(
                "grammar: a GBNF grammar needs verdict: structured or logprobs on a llamacpp server"
            )
        return self


class PanelConfig(Config):
    """Several judges as one ("Replacing Judges with Juries", Verga et al. 2024): each order's verdict is
    the members' majority, or the mean of their soft preferences; the two orders then combine as usual."""

    judges: list[JudgeConfig] = Field(..., min_length=2)
    vote: Literal["majority", "mean"] = Field(
        "majority",
        description="majority: the most common positional verdict (a tie when no single one leads); mean: the "
        "mean of P(first) over members (text verdicts count 1 / 0.5 / 0)",
    )
    order_tie_margin: float = Field(
        0.05,
        ge=0,
        lt=0.5,
        description="mean: an order whose mean |P(first) - 0.5| <= margin is a tie (per order; a judge's own "
        "tie_margin is per pair, on the preference averaged over both orders). Was `tie_margin`, still accepted",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_margin(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tie_margin" in data and "order_tie_margin" not in data:
            warn_once(
                "panel.tie_margin",
                "panel: tie_margin is now called order_tie_margin (a per-order margin, unlike a judge's "
                "per-pair tie_margin); tie_margin still works",
            )
            data = {**data, "order_tie_margin": data["tie_margin"]}
            del data["tie_margin"]
        return data

    @model_validator(mode="after")
    def _no_nesting(self) -> PanelConfig:
        if any(judge.panel is not None for judge in self.judges):
            raise ValueError("judges: a panel member cannot itself be a panel")
        return self


JudgeConfig.model_rebuild()


class GradeConfig(Config):
    """``lima grade``: single-answer grading of every generation line, ``samples`` times each — Likert
    helpfulness 1–6 (LIMA's ablations) or LIMA's absolute Fail / Pass / Excellent (§4.3)."""

    endpoint: EndpointConfig = EndpointConfig()
    scale: Literal["likert", "absolute", "mt_bench"] = Field(
        "likert",
        description="likert: helpfulness 1-6; absolute: LIMA's Fail / Pass / Excellent; mt_bench: FastChat's "
        "single-answer rating 1-10 (single-v1 / single-math-v1 and their multi-turn forms, Rating: [[n]])",
    )
    template: str | None = Field(
        None, description="default: likert_helpfulness.txt (likert) or lima_absolute.txt (absolute)"
    )
    system_prompt: str | None = None
    samples: int = Field(
        5, ge=1, le=50, description="grades per generation line (LIMA's ablations: 1 per sampled response)"
    )
    constrained: bool = Field(
        False,
        description="llama.cpp servers (base_url: embedded): a GBNF grammar built from the scale limits the "
        "reply to a grade ('Fail' | 'Pass' | 'Excellent', or 'Score: 1'…'6'), so a small judge always parses",
    )
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(256, ge=1)
    parse_retries: int = Field(2, ge=0, le=10)
    max_answer_chars: int | None = Field(None, ge=1)
    allow_empty: bool = False
    bootstrap: int = Field(1000, ge=100)
    seed: int = 0
    cache: str | None = None
    questions: str | None = Field(
        None, description="scale: mt_bench: FastChat's question.jsonl (categories and turns)"
    )
    references: str | None = Field(
        None, description="scale: mt_bench: FastChat's reference_answer/*.jsonl (single-math-v1's references)"
    )

    @model_validator(mode="after")
    def _mt_bench_prompts(self) -> GradeConfig:
        if self.scale == "mt_bench" and self.template is not None:
            raise ValueError(
                "template: scale: mt_bench grades with FastChat's own single-v1 prompts (chosen by category and "
                "turn); remove template"
            )
        return self
