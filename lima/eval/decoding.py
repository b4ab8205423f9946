"""LIMA's decoding, made exact: what `lima generate` hands each backend beyond plain `generate()` defaults.

- **Repetition penalty on generated tokens only** (LIMA, after Keskar et al. 2019). transformers'
  ``repetition_penalty`` scans the whole sequence: the prompt, its end-of-turn tokens and the left padding,
  so the odds of stopping drop and the output depends on how prompts were batched.
- **Nucleus sampling only**: no top-k (transformers adds top_k=50 unless told otherwise).
- **One seed per response**, from (seed, prompt_id, sample), drawn from that row's own generator, so a
  response does not depend on its batch, and a resumed run equals an uninterrupted one.
- **Stop at the template's end of turn** (e.g. ``<|im_end|>`` where EOS is ``<|endoftext|>``), not only at EOS.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from transformers import LogitsProcessor

# A model without a chat template (a raw base model): LIMA's role layout after the BOS token; the model's own
# next "User:" line ends its turn.
PLAIN_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for m in messages %}{{ m['role'] | capitalize }}:\n{{ m['content'] }}\n{% endfor %}"
    "{{ 'Assistant:\\n' }}"  # a literal: jinja drops a template's trailing newline
)
PLAIN_STOP = "\nUser:"


def sample_seed(seed: int, prompt_id: str, sample: int) -> int:
    """A stable 31-bit seed for one response (fits every backend's seed field)."""
    digest = hashlib.sha256(f"{seed}\0{prompt_id}\0{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


class GeneratedRepetitionPenalty(LogitsProcessor):
    """CTRL's repetition penalty over the tokens generated so far, per row; the prompt (and its left padding,
    which lies before ``prompt_length``) is never penalised."""

    def __init__(self, penalty: float, prompt_length: int) -> None:
        if penalty <= 0:
            raise ValueError(f"repetition penalty must be > 0, got {penalty}")
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0 or self.penalty == 1.0:
            return scores
        picked = torch.gather(scores, 1, generated)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, generated, picked)


class RowSeededSampler(LogitsProcessor):
    """Draws each row's next token from its own ``torch.Generator`` and leaves only that token possible, so
    greedy selection in ``generate()`` returns the sample. Goes last, after temperature and top-p."""

    def __init__(self, seeds: list[int], device: torch.device | str) -> None:
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float(), dim=-1)
        chosen = torch.cat(
            [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators, strict=True)]
        )
        only = torch.full_like(scores, float("-inf"))
        return only.scatter(1, chosen[:, None], 0.0)


def logits_processors(
    penalty: float,
    prompt_length: int,
    do_sample: bool,
    temperature: float,
    top_p: float,
    seeds: list[int],
    device,
) -> list[LogitsProcessor]:
    """Penalty, then (when sampling) temperature, nucleus and the per-row draw: nothing else."""
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    chain: list[LogitsProcessor] = [GeneratedRepetitionPenalty(penalty, prompt_length)]
    if do_sample and temperature > 0:  # temperature 0 is greedy, as vLLM and OpenAI read it too
        if temperature != 1.0:
            chain.append(TemperatureLogitsWarper(temperature))
        if top_p < 1.0:
            chain.append(TopPLogitsWarper(top_p))
        chain.append(RowSeededSampler(seeds, device))
    return chain


def plain_generation_config(
    max_new_tokens: int, eos_ids: list[int], pad_id: int, stop_strings: list[str] | None = None
) -> Any:
    """Greedy selection over what our processors leave, and nothing else: no top-k, penalty or warper from a
    checkpoint's ``generation_config.json``. Install it as ``model.generation_config`` too: ``generate()``
    fills the unset fields of a passed config from the model's."""
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos_ids,
        pad_token_id=pad_id,
        stop_strings=stop_strings or None,
    )


def end_of_turn_token(tokenizer: Any, template: str) -> str | None:
    """The special token the chat template puts right after an assistant's content (ChatML's ``<|im_end|>``,
    Llama 3's ``<|eot_id|>``, LIMA's EOT), or None when a plain character follows."""
    marker = "\u2063LIMA-END-OF-CONTENT\u2063"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": marker}],
            chat_template=template,
            tokenize=False,
        )
    except Exception:  # a template that refuses this conversation has no terminator we can read off
        return None
    if marker not in text:
        return None
    after = text.split(marker, 1)[1].lstrip()
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    if not ids:
        return None
    special = set(tokenizer.all_special_ids) | {
        i for i, t in tokenizer.added_tokens_decoder.items() if getattr(t, "special", False)
    }
    return tokenizer.convert_ids_to_tokens(ids[0]) if ids[0] in special else None


def stop_token_ids(tokenizer: Any, template: str, eos: int | list[int] | None) -> list[int]:
    """EOS (the model's and the tokenizer's) and the template's end of turn."""
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    turn_end = end_of_turn_token(tokenizer, template)
    if turn_end is not None:
        ids.add(tokenizer.convert_tokens_to_ids(turn_end))
    return sorted(i for i in ids if i is not None and i >= 0)
