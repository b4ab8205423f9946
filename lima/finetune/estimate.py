"""``lima estimate``: the peak GPU memory of one training step, found without a GPU and without weights.

The model is built from its ``config.json`` alone on the meta device, adapted by the same ``adapt_model`` that
``lima train`` uses (EOT rows, residual dropout, peft adapters), then turned into fake tensors (shapes and
dtypes, no data) and run through forward, loss, backward and AdamW steps under ``MemoryTrace``. CUDA specifics
are reproduced on the CPU fake device: the compute dtype (bf16), autocast for full fine-tuning, fused AdamW,
and for QLoRA a stand-in for bitsandbytes' 4-bit linear (0.5 byte per weight + double-quantized absmax; the
weight is dequantized to the compute dtype for the forward matmul and again for the backward one).

    est = estimate(config, gpus=1)
    est.peak_gib, est.breakdown_gib, est.cards
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lima.core.errors import LimaError, ModelResolutionError
from lima.core.models import load_config, load_tokenizer
from lima.finetune.config import TrainConfig
from lima.finetune.memtrace import TERMS, MemoryTrace, track_logits, track_model

GIB = 2**30
CARDS_GIB = (24, 40, 48, 80, 141)
# Kept free on a card: the CUDA context, cuBLAS workspaces and caching-allocator fragmentation.
RESERVE_GIB = 1.5


@dataclass
class StepMemory:
    peak: int  # bytes
    breakdown: dict[str, int]
    layer_params: int = 0  # numel of one decoder layer
    other_params: int = 0  # numel outside the decoder layers (embeddings, head, final norm)
    param_bytes: int = 2  # compute dtype itemsize (what FSDP gathers)


@dataclass
class Estimate:
    micro_batch: int
    seq_len: int
    gpus: int
    peak: int  # bytes per GPU at micro_batch
    breakdown: dict[str, int]  # per GPU
    per_micro_batch: int  # bytes each extra example adds (activations, logits)
    fixed: int  # bytes at micro-batch 0 (extrapolated)
    cards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def peak_gib(self) -> float:
        return self.peak / GIB

    def to_json(self) -> dict[str, Any]:
        return {
            "peak_gib": round(self.peak / GIB, 3),
            "breakdown": {k: round(v / GIB, 3) for k, v in self.breakdown.items()},
            "micro_batch": self.micro_batch,
            "seq_len": self.seq_len,
            "gpus": self.gpus,
            "per_micro_batch_gib": round(self.per_micro_batch / GIB, 3),
            "reserve_gib": RESERVE_GIB,
            "cards": self.cards,
        }


class _Dequant4bitMatmul(torch.autograd.Function):
    """bitsandbytes' 4-bit matmul, memory-wise: a dequantized weight lives only for the matmul."""

    @staticmethod
    def forward(ctx, x, packed, out_features: int, in_features: int):  # type: ignore[override]
        ctx.shape = (out_features, in_features)
        weight = x.new_empty(ctx.shape)
        return x @ weight.t()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        weight = grad.new_empty(ctx.shape)
        return grad @ weight, None, None, None


class Simulated4bitLinear(nn.Module):
    """A frozen NF4 linear with double quantization (bitsandbytes ``Linear4bit``), shapes only."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        n = linear.weight.numel()

        def frozen(numel: int, dtype: torch.dtype) -> nn.Parameter:
            return nn.Parameter(torch.empty(numel, dtype=dtype, device="meta"), requires_grad=False)

        self.weight = frozen(n // 2, torch.uint8)  # two 4-bit codes per byte
        self.absmax = frozen(n // 64, torch.uint8)  # one 8-bit (double-quantized) scale per 64 weights
        self.absmax2 = frozen(max(1, n // (64 * 256)), torch.float32)  # one fp32 scale per 256 scales
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _Dequant4bitMatmul.apply(x, self.weight, self.out_features, self.in_features)
        return out + self.bias if self.bias is not None else out


def _quantize_base(model: nn.Module) -> None:
    from lima.finetune.dropout import decoder_layers

    for layer in decoder_layers(model):
        for parent in list(layer.modules()):
            if isinstance(parent, nn.ModuleDict):  # lora_A / lora_B: the adapter, not the base
                continue
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, Simulated4bitLinear(child))


def _fakeify(model: nn.Module, mode: Any) -> None:
    """Meta parameters/buffers -> fake CPU tensors in place (no ``Module._apply``, which cannot swap fakes)."""
    from torch._subclasses.fake_tensor import FakeTensor

    memo: dict[int, Any] = {}

    def fake(t: torch.Tensor) -> Any:
        if id(t) not in memo:
            f = FakeTensor(mode, torch.empty_like(t, device="meta"), torch.device("cpu"))
            memo[id(t)] = nn.Parameter(f, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else f
        return memo[id(t)]

    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                module._parameters[name] = fake(p)
        for name, b in list(module._buffers.items()):
            if b is not None:
                module._buffers[name] = fake(b)


def _vocabulary(config: TrainConfig, hf_config: Any) -> tuple[int, int]:
    """(vocabulary size after the chat format's tokens, tokens added). A config-only model directory has no
    tokenizer: LIMA's template is then assumed (one new EOT token) unless chat_template is ``model``."""
    from lima.finetune.template import prepare_tokenizer

    try:
        tokenizer = load_tokenizer(config.model, trust_remote_code=config.trust_remote_code)
    except (ModelResolutionError, OSError, ValueError, TypeError):
        added = 0 if config.chat_template == "model" else 1
        return hf_config.vocab_size + added, added
    chat_format = prepare_tokenizer(tokenizer, config.chat_template, config.eot_token)
    return len(tokenizer), chat_format.added_tokens


def compute_dtype(config: TrainConfig, device: str) -> torch.dtype:
    from lima.finetune.model import resolve_precision

    if device == "cpu":
        return resolve_precision(config.precision)
    return {"auto": torch.bfloat16, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        config.precision
    ]


def _batch(config: TrainConfig, batching: str, micro_batch: int, seq_len: int) -> dict[str, torch.Tensor]:
    if batching == "padding_free":
        n = micro_batch * seq_len
        ids = torch.zeros(1, n, dtype=torch.long)
        return {
            "input_ids": ids,
            "labels": ids.clone(),
            "position_ids": torch.arange(n).unsqueeze(0) % seq_len,
        }
    ids = torch.zeros(micro_batch, seq_len, dtype=torch.long)
    return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}


def measure_step(
    config: TrainConfig,
    micro_batch: int,
    seq_len: int | None = None,
    fake: bool = True,
    device: str = "cuda",
    chunked: bool = True,
) -> StepMemory:
    """Peak live tensor bytes over two optimizer steps (each of min(accumulation, 2) micro-batches) of
    ``config``'s model, adapters and loss. ``fake=False`` runs the same step on real CPU tensors (random
    weights): the reference the fake run is validated against. ``device="cuda"`` uses the GPU's dtypes."""
    from transformers import AutoModelForCausalLM

    from lima.finetune.dropout import decoder_layers
    from lima.finetune.model import adapt_model, weight_dtype

    if config.method == "qlora" and not fake:
        raise LimaError(
            "measure_step: a real QLoRA step needs bitsandbytes' kernels; measure it with lima train"
        )
    seq_len = seq_len or config.max_length
    hf_config = load_config(config.model, trust_remote_code=config.trust_remote_code)
    vocab, added = _vocabulary(config, hf_config)
    dtype = compute_dtype(config, device)
    attention = config.attn_implementation or "sdpa"
    if "flash" in attention:  # no flash kernel on the fake CPU device; sdpa's memory is the same O(tokens)
        attention = "sdpa"
    with torch.device("meta") if fake else contextlib.nullcontext():
        model = AutoModelForCausalLM.from_config(
            hf_config, dtype=weight_dtype(config, dtype), attn_implementation=attention,
            trust_remote_code=config.trust_remote_code,
        )  # fmt: skip
    layers = decoder_layers(model)
    layer_params = sum(p.numel() for p in layers[0].parameters())
    other = sum(p.numel() for p in model.parameters()) - layer_params * len(layers)
    model, _, _, batching = adapt_model(model, config, vocab, added)
    if config.method == "qlora":
        _quantize_base(model)
    if config.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=None)
    model.train()

    mode: Any = contextlib.nullcontext()
    if fake:
        from torch._subclasses.fake_tensor import FakeTensorMode

        mode = FakeTensorMode(allow_non_fake_inputs=True)
        _fakeify(model, mode)
    with mode:
        trace = run_step(model, config, batching, micro_batch, seq_len, dtype, "cpu", fused=device == "cuda",
                         chunked=chunked)  # fmt: skip
    return StepMemory(trace.peak, trace.peak_breakdown, layer_params, other, dtype.itemsize)


def run_step(
    model: Any,
    config: TrainConfig,
    batching: str,
    micro_batch: int,
    seq_len: int,
    dtype: torch.dtype,
    device: str,
    fused: bool,
    chunked: bool = True,
) -> MemoryTrace:
    """Two optimizer steps of ``model`` as the trainer runs them (autocast for fp32 weights, clipping, AdamW),
    traced by term. Also run on a real GPU model (``bench/estimate_check.py``) to compare with
    ``torch.cuda.max_memory_allocated``."""
    from lima.finetune.loss import training_loss
    from lima.finetune.model import weight_dtype

    trace = MemoryTrace()
    autocast = weight_dtype(config, dtype) != dtype
    with trace:
        track_model(trace, model)
        track_logits(trace, model.get_output_embeddings())
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
            weight_decay=config.weight_decay, fused=fused,
        )  # fmt: skip
        micro_batches = min(config.gradient_accumulation_steps, 2)
        for _ in range(2):
            for _ in range(micro_batches):
                trace.phase = "activations"
                batch = {k: v.to(device) for k, v in _batch(config, batching, micro_batch, seq_len).items()}
                with torch.autocast(device, dtype=dtype) if autocast else contextlib.nullcontext():
                    loss = training_loss(model, batch, chunked=chunked)
                (loss / micro_batches).backward()
                del loss, batch
            trace.phase = "optimizer"
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return trace


def _sharded(step: StepMemory, gpus: int) -> dict[str, int]:
    """Per-GPU terms under FSDP2/ZeRO-3 over ``gpus``: parameters, gradients and optimizer state are split;
    each GPU also holds the gathered root (embeddings, head: not resharded) and two decoder layers (one
    computing, one prefetched) in the compute dtype, plus one layer's unsharded gradient. Autocast's weight
    copies do not exist there (FSDP's mixed precision casts the gathered layer)."""
    terms = dict(step.breakdown)
    if gpus <= 1:
        return terms
    for name in ("weights", "trainable", "gradients", "optimizer"):
        terms[name] = terms[name] // gpus
    terms["weight_casts"] = 0
    terms["gathered"] = (step.other_params + 3 * step.layer_params) * step.param_bytes
    return terms


def estimate(config: TrainConfig, gpus: int = 1, seq_len: int | None = None) -> Estimate:
    """Per-GPU peak for ``config`` at its micro-batch and ``seq_len`` (default max_length), the terms, and
    for each card in ``CARDS_GIB`` whether it fits and the largest micro-batch that does."""
    if gpus < 1:
        raise LimaError(f"--gpus {gpus}: give 1 or more GPUs")
    seq_len = seq_len or config.max_length
    chunked = gpus == 1  # the chunked loss runs in one process only (see lima.finetune.loss)
    one, two = (measure_step(config, b, seq_len, chunked=chunked) for b in (1, 2))
    at = {1: one, 2: two}.get(config.batch_size) or measure_step(
        config, config.batch_size, seq_len, chunked=chunked
    )
    terms = _sharded(at, gpus)
    slope = max(1, sum(_sharded(two, gpus).values()) - sum(_sharded(one, gpus).values()))
    fixed = sum(_sharded(one, gpus).values()) - slope
    peak = sum(terms.values())
    cards = []
    for card in CARDS_GIB:
        usable = (card - RESERVE_GIB) * GIB
        largest = max(0, math.floor((usable - fixed) / slope))
        cards.append({"card_gib": card, "fits": peak <= usable, "largest_micro_batch": largest})
    return Estimate(config.batch_size, seq_len, gpus, peak, terms, slope, fixed, cards)


LABELS = {
    "weights": "frozen weights + buffers",
    "weight_casts": "autocast weight copies",
    "trainable": "trainable parameters",
    "gradients": "gradients",
    "optimizer": "optimizer state",
    "activations": "activations",
    "logits_loss": "logits + loss",
    "gathered": "gathered shards (FSDP)",
}


def format_estimate(est: Estimate, config: TrainConfig) -> str:
    where = f"per GPU over {est.gpus} GPUs (FSDP/ZeRO-3)" if est.gpus > 1 else "one GPU"
    lines = [
        f"{config.model} {config.method}, micro-batch {est.micro_batch} x {est.seq_len} tokens, "
        f"gradient checkpointing {'on' if config.gradient_checkpointing else 'off'}: peak {est.peak_gib:.2f} GiB "
        f"{where}",
    ]
    for name in (*TERMS, "gathered"):
        if name in est.breakdown:
            lines.append(f"  {LABELS[name]:<26} {est.breakdown[name] / GIB:8.2f} GiB")
    lines.append(
        f"  each extra example adds {est.per_micro_batch / GIB:.2f} GiB; {RESERVE_GIB} GiB kept free per card"
    )
    for card in est.cards:
        verdict = "fits" if card["fits"] else "does not fit"
        lines.append(
            f"  {card['card_gib']:>3} GB card: {verdict:<12} largest micro-batch {card['largest_micro_batch']}"
        )
    return "\n".join(lines)


def _available_bytes(cuda: bool) -> tuple[int, str]:
    if cuda:
        free, _total = torch.cuda.mem_get_info()
        return free, f"free on {torch.cuda.get_device_name()}"
    with open("/proc/meminfo", encoding="ascii") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return int(fields["MemAvailable"].split()[0]) * 1024, "of RAM available"


def check_memory(config: TrainConfig, world_size: int = 1) -> None:
    """Refuse, before any weights load, a run whose step cannot fit this machine (GPU memory, or available
    RAM on CPU), with the numbers. A parameter count on the meta device gives a lower bound first (weights,
    gradients and AdamW state); the traced step runs only when that bound is within reach of the limit."""
    from transformers import AutoModelForCausalLM

    from lima.finetune.model import resolve_precision, weight_dtype

    if not config.check_memory:
        return
    cuda = torch.cuda.is_available()
    try:
        available, where = _available_bytes(cuda)
    except (OSError, KeyError, ValueError, RuntimeError):
        return  # nothing to compare with
    dtype = resolve_precision(config.precision)
    hf_config = load_config(config.model, trust_remote_code=config.trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config, trust_remote_code=config.trust_remote_code)
    params = sum(p.numel() for p in model.parameters())
    per_param = {"full": weight_dtype(config, dtype).itemsize * 4, "qlora": 0.5}.get(
        config.method, dtype.itemsize
    )
    bound = int(params * per_param) // max(1, world_size if config.method == "full" else 1)
    what = "a lower bound: weights" + (", gradients and AdamW state" if config.method == "full" else "")
    if bound < available // 4:
        return
    if bound <= available:
        step = measure_step(config, config.batch_size, fake=True, device="cuda" if cuda else "cpu",
                            chunked=world_size == 1)  # fmt: skip
        bound, what = sum(_sharded(step, world_size).values()), "lima estimate's peak"
    if bound > available:
        raise LimaError(
            f"memory: one training step of {config.model} ({config.method}, batch_size={config.batch_size} x "
            f"max_length={config.max_length}) needs {bound / GIB:.1f} GiB ({what}), but this machine has "
            f"{available / GIB:.1f} GiB {where}. Use method=lora or qlora, a smaller batch_size or max_length, "
            "gradient_checkpointing=true, more GPUs (FSDP), or check_memory=false to try anyway"
        )
