"""Load anything generation can run: a model spec (hub id, local dir, embedded:NAME) or a ``lima train``
checkpoint directory (``OUT/checkpoints/epoch-<k>``: an adapter or full weights + ``lima_checkpoint.json``).

    model, tokenizer = load_for_inference("runs/demo/checkpoints/epoch-2")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lima.core.errors import ModelResolutionError

CHECKPOINT_INFO = "lima_checkpoint.json"
ADAPTER_CONFIG = "adapter_config.json"


def portable_model_spec(spec: str) -> str:
    """The base model as a checkpoint records it: a local path made absolute (a relative one would resolve
    against whatever directory generation or export later runs in); hub ids and ``embedded:`` specs as given."""
    from lima.core.models import resolve_model

    if resolve_model(spec).kind == "local":
        return str(Path(spec.strip()).expanduser().resolve())
    return spec.strip()


def checkpoint_info(path: str | Path) -> dict[str, Any] | None:
    """The ``lima_checkpoint.json`` of a checkpoint directory, or None when ``path`` is not one."""
    info_path = Path(path) / CHECKPOINT_INFO
    if not info_path.is_file():
        return None
    try:
        return json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelResolutionError(
            f"{info_path}: unreadable checkpoint info ({exc}); re-run or re-export"
        ) from None


def _stop_at_end_of_turn(model: Any, tokenizer: Any, generation_dir: Path | None, eot: str | None) -> None:
    from transformers import GenerationConfig

    if generation_dir is not None and (generation_dir / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(generation_dir)
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    for token in (eot, tokenizer.eos_token):
        if token:
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is not None and token_id >= 0:
                ids.add(token_id)
    model.generation_config.eos_token_id = sorted(ids)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(ids)
        )


def load_for_inference(spec: str | Path, dtype: Any = None, device: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode, generation stopping at EOT (or the model's end of turn)."""
    from transformers import AutoTokenizer

    from lima.core.models import load_causal_lm, load_tokenizer

    path = Path(str(spec)).expanduser()
    info = checkpoint_info(path) if path.is_dir() else None
    if dtype is None and info is not None and isinstance(info.get("dtype"), str):
        import torch

        dtype = getattr(torch, info["dtype"], None)  # the dtype training saved it in
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    if info is None:
        tokenizer = load_tokenizer(str(spec))
        model = load_causal_lm(str(spec), **kwargs)
        generation_dir = None
    elif (path / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        tokenizer = AutoTokenizer.from_pretrained(path)
        base = load_causal_lm(info["base_model"], **kwargs)
        if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
            base.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows come from the adapter
        model = PeftModel.from_pretrained(base, path)
        generation_dir = path
    else:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = load_causal_lm(str(path), **kwargs)
        generation_dir = path
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    _stop_at_end_of_turn(model, tokenizer, generation_dir, (info or {}).get("eot_token"))
    model.config.use_cache = True
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer
