"""``lima generate``: K responses per test prompt (default 1), appended line by line so an interrupted run resumes.

Each output line: ``{"prompt_id", "sample", "prompt", "model", "output", "settings"}``; ``settings`` holds the
decoding config and, under ``sent``, exactly what the backend was given. Backends: ``transformers`` (batched,
left padding; decoding per :mod:`lima.eval.decoding`), ``vllm`` (optional extra, GPU) and ``openai`` (any
OpenAI-compatible endpoint). Response ``(prompt_id, sample)`` samples with its own seed from
``(seed, prompt_id, sample)``, so neither batching nor resuming changes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.names import short_name
from lima.eval.config import GenerateConfig
from lima.eval.decoding import PLAIN_STOP, PLAIN_TEMPLATE, sample_seed
from lima.eval.io import Prompt, read_prompts


@dataclass(frozen=True)
class _Job:
    """One response to make: sample ``sample`` of ``prompt``, drawn with ``seed``."""

    prompt: Prompt
    sample: int
    seed: int

    @property
    def key(self) -> str:
        return f"{self.prompt.id}#{self.sample}"


def _jobs(prompts: list[Prompt], samples: int, seed: int, done: set[tuple[str, int]]) -> list[_Job]:
    return [
        _Job(p, k, sample_seed(seed, p.id, k))
        for p in prompts
        for k in range(samples)
        if (p.id, k) not in done
    ]


def _resume(out_path: Path, model: str) -> set[tuple[str, int]]:
    """``(prompt_id, sample)`` pairs already finished in ``out_path``; drops a torn last line left by a kill."""
    if not out_path.exists():
        return set()
    done: set[tuple[str, int]] = set()
    good_bytes = 0
    with open(out_path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                obj = json.loads(raw)
                if not raw.endswith(b"\n"):
                    raise ValueError("torn line")
            except ValueError:
                if fh.read(1):  # a bad line in the middle is not ours to repair
                    raise LimaError(f"{out_path}:{lineno}: not valid JSON; fix or delete the file") from None
                break
            where = f"{out_path}:{lineno}"
            if not isinstance(obj, dict) or "prompt_id" not in obj:
                raise LimaError(
                    f"{where}: not a `lima generate` line (expected a JSON object with a prompt_id); "
                    "choose another --out, or delete that line or the file"
                )
            if obj.get("model") != model:
                raise LimaError(
                    f"{out_path}: holds generations of {obj.get('model')!r}, not {model!r}; choose another --out"
                )
            sample = obj.get("sample", 0)  # files from before K samples hold sample 0 only
            if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
                raise LimaError(
                    f"{where}: sample: expected an integer >= 0, got {sample!r}; fix or delete the line"
                )
            done.add((str(obj["prompt_id"]), sample))
            good_bytes += len(raw)
    if good_bytes < out_path.stat().st_size:
        os.truncate(out_path, good_bytes)
    return done


class _Writer:
    """Appends generation records, flushed and fsynced per batch."""

    def __init__(self, path: Path, model: str, settings: dict[str, Any], name: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8")
        self.model = model
        self.name = name or short_name(model)  # what reports call it; never an absolute path
        self.settings = settings
        self.count = 0
        self.empty = 0

    def write(self, job: _Job, output: str, **extra: Any) -> None:
        prompt = job.prompt
        record = {
            "prompt_id": prompt.id,
            "sample": job.sample,
            "prompt": prompt.text,
            "model": self.model,
            "name": self.name,
            "output": output,
            "settings": {**self.settings, "sample_seed": job.seed, **extra},
        }
        if prompt.history:  # a multi-turn prompt: keep the conversation the answer continues
            record["history"] = prompt.history
        self.fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1
        self.empty += not output.strip()

    def flush(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.flush()
        self.fh.close()


def _reorder(out_path: Path, order: list[str]) -> None:
    """Rewrite ``out_path`` in prompt then sample order (results arrive out of order under concurrency),
    atomically."""
    from lima.core.io import atomic_open

    lines = out_path.read_text(encoding="utf-8").splitlines()
    rank = {pid: i for i, pid in enumerate(order)}

    def position(line: str) -> tuple[int, int]:
        obj = json.loads(line)
        return rank.get(str(obj["prompt_id"]), len(rank)), obj.get("sample", 0)

    lines.sort(key=position)
    with atomic_open(out_path) as fh:
        fh.write("".join(line + "\n" for line in lines))


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


def _generate_transformers(config: GenerateConfig, spec: str, todo: list[_Job], writer: _Writer) -> None:
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


def _generate_vllm(config: GenerateConfig, spec: str, todo: list[_Job], writer: _Writer) -> None:
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


def _generate_openai(config: GenerateConfig, todo: list[_Job], writer: _Writer) -> None:
    from lima.core.llm_client import ChatRequest, ChatResult, LLMClient

    assert config.endpoint is not None
    decoding = config.decoding
    extra_body, not_sent = openai_sampling(config)
    scope = PENALTY_SCOPE[openai_server(config)]
    by_key = {job.key: job for job in todo}
    failed: list[str] = []

    def request(job: _Job) -> ChatRequest:
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


def run_generation(
    config: GenerateConfig,
    out_path: Path,
    model: str | None = None,
    prompts: Path | None = None,
    limit: int | None = None,
) -> Path:
    """Generate ``decoding.samples`` responses for every prompt not yet in ``out_path`` (appending)."""
    from lima.core.manifest import RunManifest
    from lima.eval.formats.mt_bench import generate_two_turns, is_question_file

    if config.prompt_format == "auto" and is_question_file(Path(prompts or config.prompts)):
        # MT-Bench: turn 2 continues the model's own turn-1 answer, one pass per turn
        return generate_two_turns(config, out_path, model=model, prompts=prompts, limit=limit)
    out_path = Path(out_path)
    if config.backend == "openai":
        if config.endpoint is None:
            raise LimaError("backend openai needs an endpoint: section (base_url, model, api_key_env)")
        if model:
            config = config.model_copy(
                update={"endpoint": config.endpoint.model_copy(update={"model": model})}
            )
        model_name = config.endpoint.model
        openai_sampling(config)  # a missing openai_server fails before anything is sent
    else:
        model_name = model or config.model
    prompt_path = Path(prompts or config.prompts)
    todo_all = read_prompts(prompt_path, config.prompt_format)[:limit]
    if not todo_all:
        raise LimaError(f"{prompt_path}: no prompts left to generate from (--limit {limit})")
    decoding = config.decoding
    done = _resume(out_path, model_name)
    todo = _jobs(todo_all, decoding.samples, decoding.seed, done)
    settings = {"backend": config.backend, **decoding.model_dump()}
    run_dir = out_path.parent / f"{out_path.stem}.run"
    with RunManifest(run_dir, "generate", config, inputs=[prompt_path], seed=decoding.seed) as manifest:
        writer = _Writer(out_path, model_name, settings, config.name)
        try:
            if todo and config.backend == "transformers":
                _generate_transformers(config, model_name, todo, writer)
            elif todo and config.backend == "vllm":
                _generate_vllm(config, model_name, todo, writer)
            elif todo:
                _generate_openai(config, todo, writer)
        finally:
            writer.close()
            manifest.update(
                model=model_name,
                output=str(out_path),
                prompts=len(todo_all),
                samples=decoding.samples,
                resumed=len(done),
                generated=writer.count,
                empty_outputs=writer.empty,
            )
    if todo:
        _reorder(out_path, [p.id for p in todo_all])
    if writer.empty:
        from lima.core.cli_util import echo_err

        echo_err(
            f"warning: {writer.empty} empty output(s) in {out_path}; `lima judge` refuses them unless allow_empty"
        )
    return out_path
