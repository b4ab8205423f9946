"""``lima generate``: one response per test prompt, appended line by line so an interrupted run resumes.

Each output line: ``{"prompt_id", "prompt", "model", "output", "settings"}``. Backends: ``transformers``
(batched, left padding, stops at the end-of-turn token), ``vllm`` (optional extra, GPU) and ``openai``
(any OpenAI-compatible endpoint).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.config import GenerateConfig
from lima.eval.io import Prompt, read_prompts

# Used only for a model without a chat template (a raw base model): LIMA's role layout, without EOT.
_PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}:\n{{ m['content'] }}\n{% endfor %}Assistant:\n"
)


def _resume(out_path: Path, model: str) -> set[str]:
    """prompt_ids already finished in ``out_path``; drops a torn last line left by a kill."""
    if not out_path.exists():
        return set()
    done: set[str] = set()
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
            if obj.get("model") != model:
                raise LimaError(
                    f"{out_path}: holds generations of {obj.get('model')!r}, not {model!r}; choose another --out"
                )
            done.add(str(obj["prompt_id"]))
            good_bytes += len(raw)
    if good_bytes < out_path.stat().st_size:
        os.truncate(out_path, good_bytes)
    return done


class _Writer:
    """Appends generation records, flushed and fsynced per batch."""

    def __init__(self, path: Path, model: str, settings: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8")
        self.model = model
        self.settings = settings
        self.count = 0
        self.empty = 0

    def write(self, prompt: Prompt, output: str, **extra: Any) -> None:
        record = {
            "prompt_id": prompt.id,
            "prompt": prompt.text,
            "model": self.model,
            "output": output,
            "settings": {**self.settings, **extra},
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
    """Rewrite ``out_path`` in prompt order (results arrive out of order under concurrency), atomically."""
    from lima.core.io import atomic_open

    lines = out_path.read_text(encoding="utf-8").splitlines()
    rank = {pid: i for i, pid in enumerate(order)}
    lines.sort(key=lambda line: rank.get(str(json.loads(line)["prompt_id"]), len(rank)))
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


def _generate_transformers(config: GenerateConfig, spec: str, todo: list[Prompt], writer: _Writer) -> None:
    import torch
    from tqdm.auto import tqdm
    from transformers import set_seed

    model, tokenizer, device = _load_transformers(spec, config.dtype, config.device)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    template = tokenizer.chat_template or _PLAIN_TEMPLATE
    eos = model.generation_config.eos_token_id
    decoding = config.decoding
    with tqdm(total=len(todo), desc="generating", unit="prompt") as bar:
        for start in range(0, len(todo), config.batch_size):
            batch = todo[start : start + config.batch_size]
            texts = [
                tokenizer.apply_chat_template(
                    p.chat(config.system_prompt),
                    chat_template=template,
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for p in batch
            ]
            inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            set_seed(decoding.seed + start)  # per batch: a resumed run samples like an uninterrupted one
            sampling = (
                {"temperature": decoding.temperature, "top_p": decoding.top_p} if decoding.do_sample else {}
            )
            with torch.no_grad():
                output = model.generate(
                    **inputs,
                    max_new_tokens=decoding.max_new_tokens,
                    do_sample=decoding.do_sample,
                    repetition_penalty=decoding.repetition_penalty,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=eos,
                    **sampling,
                )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            for prompt, tokens in zip(batch, new_tokens, strict=True):
                n = int((tokens != tokenizer.pad_token_id).sum())
                text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
                writer.write(
                    prompt, text, new_tokens=n, finish="length" if n >= decoding.max_new_tokens else "stop"
                )
            writer.flush()
            bar.update(len(batch))


def _generate_vllm(config: GenerateConfig, spec: str, todo: list[Prompt], writer: _Writer) -> None:
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
    params = SamplingParams(
        temperature=decoding.temperature if decoding.do_sample else 0.0,
        top_p=decoding.top_p,
        repetition_penalty=decoding.repetition_penalty,
        max_tokens=decoding.max_new_tokens,
        seed=decoding.seed,
    )
    for start in range(0, len(todo), 256):  # chunks, so that a kill loses at most one chunk
        batch = todo[start : start + 256]
        outputs = llm.chat([p.chat(config.system_prompt) for p in batch], params, use_tqdm=True)
        for prompt, out in zip(batch, outputs, strict=True):
            completion = out.outputs[0]
            writer.write(
                prompt,
                completion.text.strip(),
                new_tokens=len(completion.token_ids),
                finish=completion.finish_reason,
            )
        writer.flush()


def _generate_openai(config: GenerateConfig, todo: list[Prompt], writer: _Writer) -> None:
    from lima.core.llm_client import ChatRequest, ChatResult, LLMClient

    assert config.endpoint is not None
    decoding = config.decoding
    by_key = {p.id: p for p in todo}
    failed: list[str] = []

    def on_result(result: ChatResult) -> None:
        if result.error is not None:
            failed.append(f"{result.key}: {result.error}")
            return
        writer.write(by_key[result.key], (result.text or "").strip(), new_tokens=result.completion_tokens)
        writer.flush()

    requests = [
        ChatRequest(
            key=p.id,
            messages=p.chat(config.system_prompt),
            temperature=decoding.temperature if decoding.do_sample else 0.0,
            top_p=decoding.top_p if decoding.do_sample else None,
            max_tokens=decoding.max_new_tokens,
            seed=decoding.seed,
            extra_body=config.openai_extra_body or None,
        )
        for p in todo
    ]
    with LLMClient(config.endpoint, None) as client:
        client.complete_many(requests, desc="generating", on_result=on_result)
    if failed:
        raise LimaError(
            f"{len(failed)} prompt(s) failed (e.g. {failed[0]}); the rest are saved: rerun to resume"
        )


def run_generation(
    config: GenerateConfig,
    out_path: Path,
    model: str | None = None,
    prompts: Path | None = None,
    limit: int | None = None,
) -> Path:
    """Generate a response for every prompt not yet in ``out_path`` (appending); returns ``out_path``."""
    from lima.core.manifest import RunManifest

    out_path = Path(out_path)
    if config.backend == "openai":
        if config.endpoint is None:
            raise LimaError("backend openai needs an endpoint: section (base_url, model, api_key_env)")
        if model:
            config = config.model_copy(
                update={"endpoint": config.endpoint.model_copy(update={"model": model})}
            )
        model_name = config.endpoint.model
    else:
        model_name = model or config.model
    prompt_path = Path(prompts or config.prompts)
    todo_all = read_prompts(prompt_path, config.prompt_format)[:limit]
    done = _resume(out_path, model_name)
    todo = [p for p in todo_all if p.id not in done]
    settings = {"backend": config.backend, **config.decoding.model_dump()}
    run_dir = out_path.parent / f"{out_path.stem}.run"
    with RunManifest(
        run_dir, "generate", config, inputs=[prompt_path], seed=config.decoding.seed
    ) as manifest:
        writer = _Writer(out_path, model_name, settings)
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
