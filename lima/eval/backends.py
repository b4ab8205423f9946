"""The three generation backends of ``lima generate``: ``transformers`` (batched, left padding; decoding per
:mod:`lima.eval.decoding`), ``vllm`` (optional extra, GPU) and ``openai`` (any OpenAI-compatible endpoint).
Each takes the jobs still to do (``job.prompt``, ``job.seed``, ``job.key``) and a writer that appends lines.

Layer: engines (generation). Imports ``lima.core``, the config and :mod:`lima.eval.decoding`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.config import GenerateConfig
from lima.eval.decoding import PLAIN_STOP, PLAIN_TEMPLATE


def _load_transformers(spec: str, dtype: str, device: str | None) -> tuple[Any, Any, str]:
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        torch_dtype = (
            torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        )
    else:
        torch_dtype = getattr(torch, dtype)
    from lima.core.checkpoint import load_for_inference

    model, tokenizer = load_for_inference(spec, dtype=torch_dtype, device=device)
    model.eval()
    return model, tokenizer, device


@dataclass(frozen=True)
class ChatSetup:
    """How prompts are rendered and where a response ends, for one tokenizer."""

    template: str
    stop_ids: list[int]
    stop_strings: list[str]  # only for the plain template of a base model

    @property
    def plain(self) -> bool:
        return bool(self.stop_strings)

    def stops(self, tokenizer: Any) -> list[str]:
        return [*tokenizer.convert_ids_to_tokens(self.stop_ids), *self.stop_strings]


def chat_setup(tokenizer: Any, eos: int | list[int] | None) -> ChatSetup:
    """The tokenizer's own template, stopping at its end of turn and EOS; else the plain template for a base
    model (BOS first), stopping at EOS or at the model's own next ``User:`` line."""
    from lima.eval.decoding import stop_token_ids

    if tokenizer.chat_template:
        return ChatSetup(tokenizer.chat_template, stop_token_ids(tokenizer, tokenizer.chat_template, eos), [])
    return ChatSetup(PLAIN_TEMPLATE, stop_token_ids(tokenizer, PLAIN_TEMPLATE, eos), [PLAIN_STOP])


@dataclass(frozen=True)
class Completion:
    text: str
    new_tokens: int
    finish: str  # "stop" (end of turn, EOS or a stop string) or "length"
    tokens: tuple[int, ...] = ()


def generate_batch(
    model: Any, tokenizer: Any, texts: list[str], seeds: list[int], decoding: Any, setup: ChatSetup
) -> list[Completion]:
    """One ``generate()`` call over rendered prompts (left padded), with LIMA's decoding applied by our own
    processors: the penalty over generated tokens only, nucleus sampling without top-k, one generator per row."""
    import torch

    from lima.eval.decoding import logits_processors, plain_generation_config

    pad_id = tokenizer.pad_token_id
    generation_config = plain_generation_config(
        decoding.max_new_tokens, setup.stop_ids, pad_id, setup.stop_strings
    )
    # generate() fills a passed config's fields that hold library defaults (do_sample=False among them) from
    # the model's own, so the model (under a peft wrapper too) must hold ours.
    model.generation_config = generation_config
    if hasattr(model, "get_base_model"):  # a peft adapter: generate() runs on the base model
        model.get_base_model().generation_config = generation_config
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    prompt_length = inputs["input_ids"].shape[1]
    processors = logits_processors(
        decoding.repetition_penalty,
        prompt_length,
        decoding.sampling,
        decoding.temperature,
        decoding.top_p,
        seeds,
        model.device,
    )
    extra: dict[str, Any] = {"tokenizer": tokenizer} if setup.plain else {}  # stop strings need it
    with torch.no_grad():
        output = model.generate(
            **inputs, generation_config=generation_config, logits_processor=processors, **extra
        )
    completions = []
    stop = set(setup.stop_ids)
    for row in output[:, prompt_length:].tolist():
        end = next((i for i, t in enumerate(row) if t in stop), None)
        tokens = row if end is None else row[: end + 1]
        if end is None:  # stopped by a stop string, or ran out of tokens (rows past the longest are padded)
            while tokens and tokens[-1] == pad_id:
                tokens = tokens[:-1]
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        cut = next((text.index(m) for m in setup.stop_strings if m in text), None)
        finish = "stop" if end is not None or cut is not None else "length"
        if finish == "length" and len(tokens) < decoding.max_new_tokens:
            finish = "stop"
        completions.append(Completion(text[:cut].strip(), len(tokens), finish, tuple(tokens)))
    return completions


def _sent_transformers(decoding: Any, stops: list[str]) -> dict[str, Any]:
    """What generate_batch applies, in the vocabulary of the other backends."""
    sent: dict[str, Any] = {
        "max_new_tokens": decoding.max_new_tokens,
        "repetition_penalty": decoding.repetition_penalty,
        "stop": stops,
    }
    if decoding.sampling:
        sent |= {"temperature": decoding.temperature, "top_p": decoding.top_p, "top_k": None}
    else:
        sent["greedy"] = True
    return sent


def _generate_transformers(config: GenerateConfig, spec: str, todo: list[Any], writer: Any) -> None:
    from tqdm.auto import tqdm

    model, tokenizer, _ = _load_transformers(spec, config.dtype, config.device)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    setup = chat_setup(tokenizer, model.generation_config.eos_token_id)
    sent = _sent_transformers(config.decoding, setup.stops(tokenizer))
    with tqdm(total=len(todo), desc="generating", unit="response") as bar:
        for start in range(0, len(todo), config.batch_size):
            batch = todo[start : start + config.batch_size]
            texts = [
                tokenizer.apply_chat_template(
                    job.prompt.chat(config.system_prompt),
                    chat_template=setup.template,
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for job in batch
            ]
            seeds = [job.seed for job in batch]
            completions = generate_batch(model, tokenizer, texts, seeds, config.decoding, setup)
            for job, done in zip(batch, completions, strict=True):
                writer.write(
                    job,
                    done.text,
                    new_tokens=done.new_tokens,
                    finish=done.finish,
                    sent=sent | ({"seed": job.seed} if config.decoding.sampling else {}),
                    repetition_penalty_scope="generated tokens",
                )
            writer.flush()
            bar.update(len(batch))


def _generate_vllm(config: GenerateConfig, spec: str, todo: list[Any], writer: Any) -> None:
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise LimaError(
            "backend vllm needs the vllm extra: pip install 'lima-align[vllm]' (GPU only)"
        ) from None
    from lima.core.models import pretrained_location

    location, _ = pretrained_location(spec)
    if (Path(location) / "adapter_config.json").exists():
        raise LimaError(f"{spec}: an adapter checkpoint; vllm needs a merged model: run `lima export` first")
    decoding = config.decoding
    llm = LLM(model=location, seed=decoding.seed, dtype="auto" if config.dtype == "auto" else config.dtype)
    tokenizer = llm.get_tokenizer()
    setup = chat_setup(tokenizer, None)
    # vLLM's repetition penalty counts the prompt's tokens too, and it has no generated-only variant.
    common: dict[str, Any] = {
        "temperature": decoding.temperature if decoding.do_sample else 0.0,
        "top_p": decoding.top_p if decoding.do_sample else 1.0,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": decoding.repetition_penalty,
        "max_tokens": decoding.max_new_tokens,
        "stop_token_ids": setup.stop_ids,
        "stop": setup.stop_strings,
    }
    for start in range(0, len(todo), 256):  # chunks, so that a kill loses at most one chunk
        batch = todo[start : start + 256]
        params = [SamplingParams(**common, seed=job.seed) for job in batch]
        outputs = llm.chat(
            [job.prompt.chat(config.system_prompt) for job in batch],
            params,
            chat_template=setup.template,
            use_tqdm=True,
        )
        for job, out in zip(batch, outputs, strict=True):
            completion = out.outputs[0]
            writer.write(
                job,
                completion.text.strip(),
                new_tokens=len(completion.token_ids),
                finish=completion.finish_reason,
                sent=common | {"seed": job.seed},
                repetition_penalty_scope="prompt and generated tokens (vLLM)",
            )
        writer.flush()


PENALTY_SCOPE = {
    "vllm": "prompt and generated tokens (vLLM)",
    "llamacpp": "the last 64 tokens (llama-server: the prompt's included; llama-cpp-python: generated only)",
    "openai": "not applied (the OpenAI API has no repetition penalty)",
}


def openai_server(config: GenerateConfig) -> str:
    """The server behind an openai-backend endpoint: as configured, llamacpp for the embedded one."""
    assert config.endpoint is not None
    if config.openai_server is not None:
        return config.openai_server
    if not config.endpoint.is_embedded:
        raise LimaError(
            "backend openai: set openai_server: vllm | llamacpp | openai (the server behind "
            f"{config.endpoint.base_url}); it decides how the repetition penalty and top-k are sent"
        )
    return "llamacpp"  # the embedded server is llama-cpp-python's


def openai_sampling(config: GenerateConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """The server-specific request fields for LIMA's decoding, and what could not be sent (with why).

    vLLM and llama.cpp apply a model's ``generation_config.json`` or their own defaults (llama.cpp: top_k 40,
    min_p 0.05, repeat_penalty 1.1) to fields a request leaves out, so top-k and min-p are disabled
    explicitly. Penalty scopes differ from LIMA's (all generated tokens): vLLM counts the prompt's tokens too;
    llama.cpp's llama-server counts the last ``repeat_last_n`` (64) tokens, the prompt's included (it replays
    them into the sampler); llama-cpp-python's server (the embedded one) the last 64 generated tokens only.
    """
    decoding = config.decoding
    server = openai_server(config)
    extra: dict[str, Any] = {}
    not_sent: dict[str, str] = {}
    if server == "vllm":
        extra = {"repetition_penalty": decoding.repetition_penalty, "top_k": -1, "min_p": 0.0}
    elif server == "llamacpp":  # llama-server and llama-cpp-python's server take the same fields
        extra = {"repeat_penalty": decoding.repetition_penalty, "top_k": 0, "min_p": 0.0}
    elif decoding.repetition_penalty != 1.0:
        not_sent["repetition_penalty"] = (
            f"{decoding.repetition_penalty}: the OpenAI API has no repetition penalty (frequency_penalty and "
            "presence_penalty are different penalties); not applied"
        )
    return extra | config.openai_extra_body, not_sent


def _generate_openai(config: GenerateConfig, todo: list[Any], writer: Any) -> None:
    from lima.core.llm_client import ChatRequest, ChatResult, LLMClient

    assert config.endpoint is not None
    decoding = config.decoding
    extra_body, not_sent = openai_sampling(config)
    scope = PENALTY_SCOPE[openai_server(config)]
    by_key = {job.key: job for job in todo}
    failed: list[str] = []

    def request(job: Any) -> ChatRequest:
        return ChatRequest(
            key=job.key,
            messages=job.prompt.chat(config.system_prompt),
            temperature=decoding.temperature if decoding.do_sample else 0.0,
            top_p=decoding.top_p if decoding.do_sample else None,
            max_tokens=decoding.max_new_tokens,
            seed=job.seed,
            extra_body=extra_body or None,
        )

    def sent(r: ChatRequest) -> dict[str, Any]:
        fields = {"temperature": r.temperature, "top_p": r.top_p, "max_tokens": r.max_tokens, "seed": r.seed}
        return {k: v for k, v in fields.items() if v is not None} | extra_body

    requests = {job.key: request(job) for job in todo}

    def on_result(result: ChatResult) -> None:
        if result.error is not None:
            failed.append(f"{result.key}: {result.error}")
            return
        extra = {"not_sent": not_sent} if not_sent else {}
        writer.write(
            by_key[result.key],
            (result.text or "").strip(),
            new_tokens=result.completion_tokens,
            sent=sent(requests[result.key]),
            repetition_penalty_scope=scope,
            **extra,
        )
        writer.flush()

    with LLMClient(config.endpoint, None) as client:
        client.complete_many(list(requests.values()), desc="generating", on_result=on_result)
    if failed:
        raise LimaError(
            f"{len(failed)} response(s) failed (e.g. {failed[0]}); the rest are saved: rerun to resume"
        )
