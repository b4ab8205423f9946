"""Where an LLM is reached: any OpenAI-compatible endpoint, or the embedded local judge server."""

from __future__ import annotations

from pydantic import Field, field_validator

from lima.core.config import Config

EMBEDDED = "embedded"


class EndpointConfig(Config):
    """An OpenAI-compatible endpoint. Keys are never stored: only the name of the variable holding one."""

    base_url: str = Field(
        EMBEDDED,
        description="e.g. https://api.openai.com/v1, http://localhost:8000/v1 (vLLM), or 'embedded' "
        "to start the local llama.cpp server with `embedded_model` for the run.",
    )
    model: str = "smollm2-135m-instruct"
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="environment variable that holds the API key (None: no key)"
    )
    embedded_model: str = "embedded:smollm2-135m-instruct"
    embedded_n_ctx: int = Field(4096, ge=256)
    concurrency: int = Field(4, ge=1, le=1024)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0, le=50)
    price_per_million_input_tokens: float = Field(0.0, ge=0)
    price_per_million_output_tokens: float = Field(0.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value != EMBEDDED and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL or 'embedded'")
        return value.rstrip("/")

    @property
    def is_embedded(self) -> bool:
        return self.base_url == EMBEDDED
