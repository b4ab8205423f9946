"""Config schemas of the evaluation stage: ``configs/generate``, ``configs/judge``, ``configs/grade``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lima.core.config import Config
from lima.core.endpoint import EndpointConfig


class DecodingConfig(Config):
    """LIMA's decoding by default: nucleus p=0.9, temperature 0.7, repetition penalty 1.2, ≤2,048 tokens."""

    max_new_tokens: int = Field(2048, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    repetition_penalty: float = Field(1.2, gt=0)
    do_sample: bool = Field(True, description="false: greedy decoding (temperature and top_p unused)")
    seed: int = Field(0, description="base seed; each response samples with a seed from (seed, prompt_id, sample)")
    samples: int = Field(
        1, ge=1, le=100, description="responses per prompt, each with its own seed (LIMA's ablations: 5)"
    )


class GenerateConfig(Config):
    """``lima generate``: one response per test prompt."""

    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    model: str = Field(
        "embedded:smollm2-135m-instruct", description="spec, checkpoint dir, or endpoint model"
    )
    prompts: str = Field(
        "../shared/data/lima/lima_test_300.jsonl", description="prompt file (see prompt_format)"
    )
    prompt_format: Literal["auto", "lima_test", "records", "text", "generations"] = "auto"
    decoding: DecodingConfig = DecodingConfig()
    system_prompt: str | None = None
    batch_size: int = Field(8, ge=1, description="prompts per generate() call (transformers backend)")
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
    parser: Literal["lima_3way", "mtbench", "arena_hard"] = "lima_3way"
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


class GradeConfig(Config):
    """``lima grade``: single-answer grading of every generation line, ``samples`` times each — Likert
    helpfulness 1–6 (LIMA's ablations) or LIMA's absolute Fail / Pass / Excellent (§4.3)."""

    endpoint: EndpointConfig = EndpointConfig()
    scale: Literal["likert", "absolute"] = Field(
        "likert", description="likert: helpfulness 1-6; absolute: LIMA's Fail / Pass / Excellent"
    )
    template: str | None = Field(
        None, description="default: likert_helpfulness.txt (likert) or lima_absolute.txt (absolute)"
    )
    system_prompt: str | None = None
    samples: int = Field(
        5, ge=1, le=50, description="grades per generation line (LIMA's ablations: 1 per sampled response)"
    )
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(256, ge=1)
    parse_retries: int = Field(2, ge=0, le=10)
    max_answer_chars: int | None = Field(None, ge=1)
    allow_empty: bool = False
    bootstrap: int = Field(1000, ge=100)
    seed: int = 0
    cache: str | None = None
