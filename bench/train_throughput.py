"""Training throughput: ``lima train`` versus plain TRL ``SFTTrainer`` with its defaults, in one run.

Same model, same records, same LoRA settings, same max length, epochs and per-device batch size; everything
else is each side's default (TRL: right-padded batches, gradient checkpointing on; lima: its recipe). Each side
runs in its own subprocess so peak memory (max RSS on CPU, max allocated on CUDA) is its own.

CPU (default mode): a tiny random Llama over real LIMA records; tokens/s = dataset tokens x epochs / wall time.

    python bench/train_throughput.py --records 64 --out bench/results/train_throughput_cpu.json

GPU (``--gpu``): a Llama-3.1-8B-shaped model (hidden 4096, 32 layers, 32 heads, 8 KV heads, MLP 14336,
vocabulary 128256) with random bf16 weights built from a config, for each method (lora, qlora, full) and each
side (lima = ``run_training`` with configs/train/lima_lora.yaml, lima_qlora.yaml, lima.yaml; TRL =
``SFTTrainer`` defaults). Examples are synthetic token sequences whose lengths are drawn from LIMA's length
distribution (bench/results/train_throughput_gpu_lengths.json: the 1,000 LIMA training conversations tokenized
with the embedded SmolLM2 tokenizer and its chat template, capped at 2,048; rewrite it with --write-lengths).
Warmup steps are not timed; the run stops right after the last timed step (per-epoch checkpoints are not part
of throughput). ``full`` uses the same width with --full-layers layers (default 8): full fine-tuning of all
32 layers needs ~128 GB of fp32 weights, gradients and AdamW state, more than one GPU holds. MFU counts 4N
FLOPs per token for LoRA/QLoRA and 6N for full, N = non-embedding parameters (input embedding and LM head
excluded; ``mfu_all_params`` uses all parameters), against the device's dense bf16 peak (table below, or
--peak-tflops).

Run on a lent H100/H200 (expected 6-8 minutes: one 8B build + six runs of ~1 minute; not yet measured). Once,
here, fetch the wheels the device lacks into an ignored folder (~62 MB of the 64 MiB a call carries; the
versions this repo's venv tests with):

    echo /.whl/ >> .git/info/exclude
    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl trl==1.16.0 bitsandbytes==0.50.2 transformers==5.24.0 \
      peft==0.21.2 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pydantic==2.14.4 pydantic_core==2.50.5 \
      annotated-types==0.8.0 typing-inspection==0.4.5

then one device call with carry [".whl"] and timeout_s 600 runs this bench inside the whole prepared check
(the gpu tests, this bench, one QLoRA ``lima train`` of the 8B-shaped model; bench/gpu_check.sh):

    bash bench/gpu_check.sh --out $OUT

and copy $OUT's files into bench/results/. The report is rewritten after every run, so
a timeout still returns what finished. ``--smoke`` runs the same code on CPU with a tiny Llama in seconds
(tests/finetune/test_bench_smoke.py), QLoRA included (bitsandbytes >= 0.50 quantizes on CPU).

CPU QLoRA vs LoRA (``--cpu-adapters``): lima's run_training with lima_qlora.yaml and lima_lora.yaml on one model
(default the embedded SmolLM2-135M), each in its own subprocess: step time and peak RSS.

    python bench/train_throughput.py --cpu-adapters --out bench/results/train_qlora_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LORA = {"r": 8, "alpha": 16, "dropout": 0.0}


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _count_tokens(model_dir: str, data: str, max_length: int) -> int:
    from transformers import AutoTokenizer

    from lima.core.record import read_records
    from lima.finetune.data import tokenize_records
    from lima.finetune.template import prepare_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prepare_tokenizer(tokenizer, "lima", "<|eot|>")
    _, stats = tokenize_records(tokenizer, list(read_records(data)), max_length)
    return stats.tokens


def child_lima(args: argparse.Namespace) -> dict:
    from lima.core.config import load_config
    from lima.finetune.config import TrainConfig
    from lima.finetune.run import run_training

    overrides = [
        f"model={args.model}", "method=lora", f"lora.r={LORA['r']}", f"lora.alpha={LORA['alpha']}",
        f"lora.dropout={LORA['dropout']}", f"max_length={args.max_length}", f"epochs={args.epochs}",
        f"batch_size={args.batch_size}", "gradient_accumulation_steps=1", "chat_template=lima",
        "output.tensorboard=false", "output.resume_every_steps=100000", "dropout_top=0.0", "batching=auto",
    ]  # fmt: skip
    config = load_config(ROOT / "configs" / "train" / "tiny.yaml", TrainConfig, overrides)
    out = Path(tempfile.mkdtemp(prefix="bench-lima-"))
    run_training(config, out / "run", data=Path(args.data))
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    tokens = manifest["data_stats"]["train"]["tokens"] * args.epochs
    return {
        "train_runtime_s": manifest["train_runtime_s"],
        "tokens": tokens,
        "peak_memory_mb": _peak_memory_mb(),
    }


def child_trl(args: argparse.Namespace) -> dict:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from lima.core.record import records_to_dataset
    from lima.finetune.template import prepare_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    prepare_tokenizer(tokenizer, "lima", "<|eot|>")  # same template and EOT token as the lima side
    model = AutoModelForCausalLM.from_pretrained(args.model)
    model.resize_token_embeddings(len(tokenizer))
    dataset = records_to_dataset(args.data).select_columns(["messages"])
    cuda = torch.cuda.is_available()
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        report_to="none",
        save_strategy="no",
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
    )
    peft_config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                             target_modules="all-linear", task_type="CAUSAL_LM")  # fmt: skip
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)  # fmt: skip
    output = trainer.train()
    tokens = _count_tokens(args.model, args.data, args.max_length) * args.epochs
    return {
        "train_runtime_s": output.metrics["train_runtime"],
        "tokens": tokens,
        "peak_memory_mb": _peak_memory_mb(),
    }


def _run_child(side: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--model", args.model, "--data", args.data,
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{side} failed:\n{result.stderr[-4000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["tokens_per_s"] = row["tokens"] / row["train_runtime_s"]
    return row


# --- GPU mode (and its CPU --smoke twin) -------------------------------------------------------------------

# Llama-3.1-8B
LLAMA_8B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
}
# The vocabulary is larger than the tokenizer's, as at 8B.
SMOKE_ARCH = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 1024,
}
RECIPES = {"lora": "lima_lora.yaml", "qlora": "lima_qlora.yaml", "full": "lima.yaml"}
FLOPS_PER_PARAM = {"lora": 4, "qlora": 4, "full": 6}  # fwd 2N + input-grad bwd 2N (+ weight-grad bwd 2N)
LENGTHS_FILE = ROOT / "bench" / "results" / "train_throughput_gpu_lengths.json"
LIMA_CAP = 2048  # LIMA trims texts to 2,048 tokens; the committed lengths are capped there
EOT = "<|eot|>"
# NVIDIA datasheet dense (non-sparse) bf16 tensor-core peaks, TFLOP/s; matched on the CUDA device name in this
# order (most specific first). The SXM parts report as e.g. "NVIDIA H100 80GB HBM3".
PEAK_BF16_TFLOPS = (("H200 NVL", 835.5), ("H200", 989.5), ("GH200", 989.5), ("H100 NVL", 835.5),
                    ("H100 PCIE", 756.5), ("H100", 989.5), ("H800", 989.5), ("A100", 312.0))  # fmt: skip


def peak_bf16_tflops(device_name: str, override: float | None = None) -> tuple[float | None, str]:
    """``(peak TFLOP/s, where it came from)``; ``None`` for an unknown device without an override."""
    if override is not None:
        return override, "--peak-tflops"
    name = device_name.upper()
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in name:
            return tflops, f"datasheet dense bf16 ({key})"
    return None, "unknown device: pass --peak-tflops"


def mfu(tokens_per_s: float, n_params: int, method: str, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation: ``FLOPS_PER_PARAM[method] * N`` FLOPs per token at ``tokens_per_s``."""
    if peak_tflops is None:
        return None
    return tokens_per_s * FLOPS_PER_PARAM[method] * n_params / (peak_tflops * 1e12)


def lima_lengths(shared: Path, cap: int = LIMA_CAP) -> list[int]:
    """Token lengths of LIMA's 1,000 training conversations (embedded SmolLM2 tokenizer and chat template)."""
    sys.path.insert(0, str(ROOT))
    from lima.core.models import load_tokenizer
    from lima.core.record import Example
    from lima.finetune.data import tokenize_records
    from lima.finetune.template import prepare_tokenizer
    from tests.finetune.lima_data import lima_records

    tokenizer = load_tokenizer("embedded:smollm2-135m-instruct")
    prepare_tokenizer(tokenizer, "auto", EOT)
    examples = [Example.from_dict(r) for r in lima_records(shared, 10**6)]
    _, stats = tokenize_records(tokenizer, examples, cap)
    return stats.lengths


def sample_lengths(lengths: list[int], n: int, max_length: int, seed: int = 0) -> list[int]:
    """``n`` lengths drawn with replacement from ``lengths`` (capped at ``LIMA_CAP``), rescaled to ``max_length``.
    The first is pinned at ``max_length`` so every run's peak memory covers a full-length sequence."""
    rng = random.Random(seed)
    scale = max_length / LIMA_CAP
    drawn = [max(1, min(max_length, round(length * scale))) for length in rng.choices(lengths, k=n)]
    return [max_length, *drawn[1:]] if drawn else drawn


def synthetic_records(tokenizer, lengths: list[int]) -> list[dict]:
    """Conversations that tokenize (LIMA template, EOT included) to ``lengths`` tokens, one word per token;
    lengths below the template's overhead come out at the minimum (a one-word prompt and answer)."""
    from lima.core.record import Example
    from lima.finetune.data import tokenize_example

    def record(i: int, n_user: int, n_answer: int) -> dict:
        def words(n: int) -> str:
            return " ".join(["the"] * n)  # "the" and " the" are one token each in the tiny BPE

        messages = [
            {"role": "user", "content": words(n_user)},
            {"role": "assistant", "content": words(n_answer)},
        ]
        return {"id": f"syn-{i}", "source": "bench", "messages": messages}

    def n_tokens(rec: dict) -> int:
        return len(tokenize_example(tokenizer, Example.from_dict(rec), 10**9)[0])

    overhead = n_tokens(record(0, 1, 1)) - 2
    records = []
    for i, length in enumerate(lengths):
        n_user = max(1, (length - overhead) // 8)  # LIMA prompts are short, answers long
        n_answer = max(1, length - overhead - n_user)
        error = n_tokens(record(i, n_user, n_answer)) - length  # a tokenizer merging words: correct once
        records.append(record(i, n_user, n_answer - error if n_answer - error >= 1 else n_answer))
    return records


def _param_counts(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings().weight.numel()
    return {"total": total, "non_embedding": total - embed - head}


def build_models(job: dict) -> dict:
    """Random-weight Llama directories (with a small BPE tokenizer): ``adapter`` at the full depth for
    lora/qlora, ``full`` at ``full_layers`` for full fine-tuning; their parameter counts and the device."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from lima.core.tiny import synthetic_corpus, train_tokenizer

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32  # CPU smoke: fp32 so both sides load the same dtype
    tokenizer = train_tokenizer(synthetic_corpus(seed=0), vocab_size=512)
    out: dict = {"device": _device_name(), "models": {}, "params": {}}
    for role, layers in job["models"].items():
        config = LlamaConfig(**{**job["arch"], "num_hidden_layers": layers}, max_position_embeddings=8192,
                             rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        torch.manual_seed(0)
        with torch.device("cuda" if cuda else "cpu"):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        path = Path(job["work"]) / f"llama-{layers}L"
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        out["models"][role] = str(path)
        out["params"][role] = {"layers": layers, **_param_counts(model)}
        del model
        if cuda:
            torch.cuda.empty_cache()
    return out


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


class TimedStepsDone(Exception):
    """Raised after the last timed step: ends training before the epoch-end checkpoint is written."""


def _step_timer(warmup: int, steps: int):
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Synchronised (time, tokens seen) marks after the warmup and after the last timed step."""

        def __init__(self) -> None:
            self.marks: dict[int, tuple[float, int]] = {}

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warmup, warmup + steps):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.marks[state.global_step] = (time.perf_counter(), state.num_input_tokens_seen)
            if state.global_step == warmup + steps:
                raise TimedStepsDone

    return StepTimer()


@contextlib.contextmanager
def _timed_trainers(timer):
    """Every HF ``Trainer`` built inside (LimaTrainer and SFTTrainer alike) gets ``timer`` as its last callback."""
    from transformers import Trainer

    original = Trainer.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(timer)

    Trainer.__init__ = init
    try:
        yield
    finally:
        Trainer.__init__ = original


def _lima_side(job: dict, out: Path) -> None:
    from lima.core.config import load_config
    from lima.finetune.config import TrainConfig
    from lima.finetune.run import run_training

    overrides = [f"model={job['model']}", "epochs=1", f"batch_size={job['batch_size']}",
                 "gradient_accumulation_steps=1", f"max_length={job['max_length']}", "chat_template=lima",
                 "output.tensorboard=false", "output.resume_every_steps=1000000"]  # fmt: skip
    if job["method"] != "full":
        overrides += [f"lora.r={LORA['r']}", f"lora.alpha={LORA['alpha']}", f"lora.dropout={LORA['dropout']}"]
    config = load_config(ROOT / "configs" / "train" / RECIPES[job["method"]], TrainConfig,
                         [*overrides, *job["lima_set"]])  # fmt: skip
    run_training(config, out / "run", data=Path(job["data"]))


def _trl_side(job: dict, out: Path) -> None:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    from lima.core.record import records_to_dataset
    from lima.finetune.template import prepare_tokenizer

    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    prepare_tokenizer(tokenizer, "lima", EOT)  # same template and EOT token as the lima side
    kwargs: dict = {}
    if job["method"] == "qlora":  # the QLoRA loading a TRL user writes; lima_qlora.yaml's settings
        compute = torch.bfloat16 if cuda else torch.float32  # bitsandbytes >= 0.50 quantizes on CPU too
        kwargs = {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                            bnb_4bit_use_double_quant=True,
                                                            bnb_4bit_compute_dtype=compute),
                  "device_map": {"": 0} if cuda else "cpu"}  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(job["model"], **kwargs)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    config = SFTConfig(
        output_dir=str(out / "trl"),
        num_train_epochs=1,
        per_device_train_batch_size=job["batch_size"],
        max_length=job["max_length"],
        report_to="none",
        save_strategy="no",
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        include_num_input_tokens_seen="non_padding",  # counting only, for tokens/s
    )
    peft_config = None
    if job["method"] != "full":
        peft_config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                 target_modules="all-linear", task_type="CAUSAL_LM")  # fmt: skip
    dataset = records_to_dataset(job["data"]).select_columns(["messages"])
    SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
               peft_config=peft_config).train()  # fmt: skip


def train_job(job: dict) -> dict:
    """One side x method: train until the last timed step; tokens/s over the timed steps, peak memory."""
    import torch

    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timer = _step_timer(job["warmup"], job["steps"])
    out = Path(tempfile.mkdtemp(prefix=f"bench-{job['side']}-{job['method']}-", dir=job["work"]))
    with _timed_trainers(timer):
        try:
            (_lima_side if job["side"] == "lima" else _trl_side)(job, out)
        except TimedStepsDone:
            pass
    end = job["warmup"] + job["steps"]
    if set(timer.marks) != {job["warmup"], end}:
        raise RuntimeError(
            f"training ended after steps {sorted(timer.marks)}; expected {end} (too few examples?)"
        )
    (t0, n0), (t1, n1) = timer.marks[job["warmup"]], timer.marks[end]
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else _peak_memory_mb() / 1024
    return {"status": "ok", "tokens_per_s": (n1 - n0) / (t1 - t0), "timed_tokens": n1 - n0,
            "timed_s": round(t1 - t0, 4), "timed_steps": job["steps"], "peak_memory_gib": round(peak_gib, 3)}  # fmt: skip


def run_job(job: dict) -> dict:
    return build_models(job) if job["kind"] == "build" else train_job(job)


def _dispatch(job: dict, in_process: bool, timeout_s: float) -> dict:
    """Run ``job`` here (``--smoke``) or in its own subprocess (own CUDA context and peak memory); the result
    carries ``wall_s``, the job's whole time (imports, model load, training), for planning device time."""
    start = time.perf_counter()
    result = run_job(job) if in_process else _subprocess_job(job, timeout_s)
    return {**result, "wall_s": round(time.perf_counter() - start, 1)}


def _subprocess_job(job: dict, timeout_s: float) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, __file__, "--job", json.dumps(job)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"timed out after {timeout_s:.0f} s"}
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        print(result.stderr[-3000:], file=sys.stderr)
        return {"status": "error", "error": tail[0][-500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_report(report: dict, out: Path) -> None:
    """``out`` (JSON) and ``out`` with ``.md``: a table per method, lima against TRL defaults."""
    from lima.core.io import atomic_open, write_json

    write_json(out, report)
    lines = [f"# Training throughput: `lima train` vs TRL `SFTTrainer` defaults ({report['mode']})", "",
             f"- device: {report['device']}",
             f"- peak bf16: {report['peak_tflops']} TFLOP/s ({report['peak_source']})",
             f"- model: {report['model']['description']}",
             f"- data: {report['data']['description']}",
             f"- MFU: {report['mfu_convention']}",
             f"- settings: {json.dumps(report['settings'])}", "",
             "| method | side | tokens/s | peak memory (GiB) | MFU | MFU (all params) | speedup vs TRL | run wall (s) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    for method, row in report["results"].items():
        for side in ("lima", "trl"):
            r = row.get(side)
            if r is None:
                continue
            if r.get("status") != "ok":
                lines.append(
                    f"| {method} | {side} | {r.get('status')}: {r.get('error') or r.get('reason')} | | | | | |"
                )
                continue
            speedup = row.get("speedup") if side == "lima" else None
            lines.append(f"| {method} | {side} | {r['tokens_per_s']:,.0f} | {r['peak_memory_gib']:.2f} | "
                         f"{pct(r.get('mfu'))} | {pct(r.get('mfu_all_params'))} | "
                         f"{'-' if speedup is None else f'{speedup:.2f}x'} | {r.get('wall_s', '-')} |")  # fmt: skip
    lines += ["", f"Targets: {report['targets']}", "", f"Model build: {report['build_wall_s']} s.", ""]
    with atomic_open(out.with_suffix(".md")) as fh:
        fh.write("\n".join(lines))


def run_gpu_bench(args: argparse.Namespace) -> dict:
    """``--gpu`` (8B-class, subprocesses) or ``--smoke`` (tiny, in-process): every method on both sides."""
    import torch

    smoke = args.smoke
    in_process = smoke and not args.isolate
    cuda = torch.cuda.is_available()
    if not smoke and not cuda:
        raise SystemExit("--gpu needs a CUDA GPU; use --smoke on CPU")
    arch = SMOKE_ARCH if smoke else LLAMA_8B
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = sorted(set(methods) - set(RECIPES))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {sorted(RECIPES)}")
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-", dir=args.work or _default_work(smoke)))

    lengths = json.loads(args.lengths.read_text())["lengths"]
    lengths_source = str(
        args.lengths.relative_to(ROOT) if args.lengths.is_relative_to(ROOT) else args.lengths
    )
    batch = {m: args.qlora_batch_size if m == "qlora" else args.batch_size for m in methods}
    # Timed steps scale with 1/batch so every method times about as many examples.
    steps = {m: max(args.timed_steps, args.timed_steps * args.batch_size // batch[m]) for m in methods}

    models = {}
    if any(m != "full" for m in methods):
        models["adapter"] = arch["num_hidden_layers"]
    if "full" in methods:
        models["full"] = args.full_layers
    print(f"building random-weight models {models} in {work} ...", flush=True)
    built = _dispatch(
        {"kind": "build", "arch": arch, "models": models, "work": str(work)}, in_process, args.job_timeout
    )
    if built.get("status") == "error":
        raise SystemExit(f"building the models failed: {built['error']}")
    peak, peak_source = peak_bf16_tflops(built["device"], args.peak_tflops)
    print(f"built in {built['wall_s']} s on {built['device']}", flush=True)

    from transformers import AutoTokenizer

    from lima.core.record import write_records
    from lima.finetune.template import prepare_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(next(iter(built["models"].values())))
    prepare_tokenizer(tokenizer, "lima", EOT)
    n_examples = {m: (args.warmup_steps + steps[m]) * batch[m] for m in methods}
    data = {m: work / f"data-{m}.jsonl" for m in methods}
    for m in methods:
        sampled = sample_lengths(lengths, n_examples[m], args.max_length, seed=args.seed)
        write_records(data[m], synthetic_records(tokenizer, sampled))

    versions = {name: _version(name) for name in ("torch", "transformers", "peft", "trl", "bitsandbytes")}
    model_desc = f"random {'tiny' if smoke else 'Llama-3.1-8B-shaped'} Llama: " + ", ".join(
        f"{k} {v}" for k, v in arch.items()
    )
    if "full" in models:
        model_desc += f"; full fine-tuning at {models['full']} layers"
    mean_length = sum(lengths) / len(lengths)
    data_desc = (
        f"synthetic examples with lengths drawn from {lengths_source} (mean {mean_length:.0f} tokens, capped at "
        f"{LIMA_CAP}), rescaled to max_length {args.max_length}; the first example pinned at max_length. lima's length-grouped "
        "sampler puts the longest batch first (in the untimed warmup); TRL's order is random"
    )
    settings = {
        "max_length": args.max_length, "batch_size": batch, "warmup_steps": args.warmup_steps,
        "timed_steps": steps, "lora": LORA, "lima_recipes": {m: RECIPES[m] for m in methods},
        "lima_overrides": args.lima_set,
    }  # fmt: skip
    report = {
        "mode": "smoke (CPU, tiny model)" if smoke else "gpu",
        "device": built["device"],
        "peak_tflops": peak,
        "peak_source": peak_source,
        "model": {"description": model_desc, "arch": arch, "params": built["params"]},
        "data": {"description": data_desc, "examples": n_examples, "lengths_source": lengths_source},
        "mfu_convention": "4N FLOPs/token for lora and qlora, 6N for full; N = non-embedding parameters (input "
        "embedding and LM head excluded); mfu_all_params uses N = all parameters",
        "settings": settings,
        "versions": versions,
        "build_wall_s": built["wall_s"],
        "results": {},
        "targets": "lima >= 2.5x TRL defaults in tokens/s; MFU >= 45%; QLoRA-8B peak <= 12 GiB at 2,048 tokens",
    }
    for method in methods:
        row: dict = {}
        report["results"][method] = row
        role = "full" if method == "full" else "adapter"
        params = built["params"][role]
        for side in ("lima", "trl"):
            if method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
                row[side] = {"status": "skipped", "reason": "qlora needs bitsandbytes (the qlora extra)"}
                continue
            job = {"kind": "train", "side": side, "method": method, "model": built["models"][role],
                   "data": str(data[method]), "batch_size": batch[method], "max_length": args.max_length,
                   "warmup": args.warmup_steps, "steps": steps[method], "lima_set": args.lima_set,
                   "work": str(work)}  # fmt: skip
            print(f"{method:5s} {side:4s} ...", flush=True)
            result = _dispatch(job, in_process, args.job_timeout)
            if result.get("status") == "ok":
                result["mfu"] = mfu(result["tokens_per_s"], params["non_embedding"], method, peak)
                result["mfu_all_params"] = mfu(result["tokens_per_s"], params["total"], method, peak)
            row[side] = result
            print(f"{method:5s} {side:4s} {json.dumps(result)}", flush=True)
            if all(row.get(s, {}).get("status") == "ok" for s in ("lima", "trl")):
                row["speedup"] = round(row["lima"]["tokens_per_s"] / row["trl"]["tokens_per_s"], 3)
            write_report(report, args.out)  # after every run: a timeout keeps what finished
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return report


def run_cpu_adapter_bench(args: argparse.Namespace) -> dict:
    """``--cpu-adapters``: QLoRA against LoRA on CPU with lima's ``run_training`` (lima_qlora.yaml vs
    lima_lora.yaml, both with gradient checkpointing) on one model spec, each run in its own subprocess so its
    peak RSS is its own; step time and tokens/s over the timed steps, after untimed warmup steps."""
    import torch

    from lima.core.models import load_tokenizer
    from lima.core.record import write_records
    from lima.finetune.template import prepare_tokenizer

    work = Path(tempfile.mkdtemp(prefix="bench-cpu-adapters-", dir=args.work))
    tokenizer = load_tokenizer(args.model)
    prepare_tokenizer(tokenizer, "lima", EOT)
    lengths = json.loads(args.lengths.read_text())["lengths"]
    n_examples = (args.warmup_steps + args.timed_steps) * args.batch_size
    data = work / "data.jsonl"
    write_records(
        data, synthetic_records(tokenizer, sample_lengths(lengths, n_examples, args.max_length, args.seed))
    )
    report = {
        "mode": "cpu adapters (QLoRA vs LoRA)",
        "device": _device_name(),
        "model": args.model,
        "data": f"{n_examples} synthetic examples, lengths from {args.lengths.name} rescaled to max_length "
        f"{args.max_length} (the first pinned there)",
        "settings": {
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "warmup_steps": args.warmup_steps,
            "timed_steps": args.timed_steps,
            "lora": LORA,
            "recipes": {m: RECIPES[m] for m in ("lora", "qlora")},
            "threads": torch.get_num_threads(),
        },
        "versions": {name: _version(name) for name in ("torch", "transformers", "peft", "bitsandbytes")},
        "peak_memory": "max RSS of the training process (model load included)",
        "results": {},
    }
    for method in ("lora", "qlora"):
        job = {"kind": "train", "side": "lima", "method": method, "model": args.model, "data": str(data),
               "batch_size": args.batch_size, "max_length": args.max_length, "warmup": args.warmup_steps,
               "steps": args.timed_steps, "lima_set": args.lima_set, "work": str(work)}  # fmt: skip
        print(f"{method} ...", flush=True)
        result = _dispatch(job, False, args.job_timeout)
        if result.get("status") == "ok":
            result["step_s"] = round(result["timed_s"] / result["timed_steps"], 4)
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)  # a shared machine's contention, for the reader
        report["results"][method] = result
        print(f"{method} {json.dumps(result)}", flush=True)
    lora, qlora = report["results"]["lora"], report["results"]["qlora"]
    if lora.get("status") == qlora.get("status") == "ok":
        report["qlora_vs_lora"] = {"peak_memory": round(qlora["peak_memory_gib"] / lora["peak_memory_gib"], 3),
                                   "step_time": round(qlora["step_s"] / lora["step_s"], 3)}  # fmt: skip
    from lima.core.io import atomic_open, write_json

    write_json(args.out, report)
    lines = [f"# QLoRA vs LoRA on CPU: `{args.model}`", "", f"- device: {report['device']}",
             f"- data: {report['data']}", f"- settings: {json.dumps(report['settings'])}",
             f"- versions: {json.dumps(report['versions'])}", f"- peak memory: {report['peak_memory']}", "",
             "| method | step (s) | tokens/s | peak memory (GiB) | load average (1 min) |",
             "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for method, r in report["results"].items():
        if r.get("status") != "ok":
            lines.append(f"| {method} | {r.get('status')}: {r.get('error')} | | | {r['load_avg_1m']} |")
        else:
            lines.append(f"| {method} | {r['step_s']:.2f} | {r['tokens_per_s']:,.2f} | {r['peak_memory_gib']:.2f} | "
                         f"{r['load_avg_1m']} |")  # fmt: skip
    if "qlora_vs_lora" in report:
        ratio = report["qlora_vs_lora"]
        lines += [
            "",
            f"QLoRA / LoRA: peak memory {ratio['peak_memory']:.2f}x, step time {ratio['step_time']:.2f}x.",
        ]
    with atomic_open(args.out.with_suffix(".md")) as fh:
        fh.write("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return report


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _default_work(smoke: bool) -> str | None:
    """/dev/shm when it has room for the 8B checkpoints (~22 GB): the six loads then read from memory and
    nothing goes through the device's disk; else the system temp dir."""
    shm = Path("/dev/shm")
    if not smoke and shm.is_dir() and shutil.disk_usage(shm).free > 40 * 2**30:
        return str(shm)
    return None


def write_lengths(path: Path) -> None:
    lengths = lima_lengths(SHARED)
    from lima.core.io import write_json

    write_json(path, {"source": "../shared/data/lima/lima_train_1k_fastchat.json",
                      "tokenizer": "embedded:smollm2-135m-instruct with its own chat template",
                      "cap": LIMA_CAP, "lengths": lengths})  # fmt: skip
    print(f"{len(lengths)} lengths, mean {sum(lengths) / len(lengths):.1f} -> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", choices=["lima", "trl"])
    parser.add_argument("--model", help="model directory (default: a tiny random Llama built here)")
    parser.add_argument("--data", help="records JSONL (default: the first --records LIMA examples)")
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--batch-size", type=int, help="per-device batch (cpu 8, gpu 4 for lora/full, smoke 2)"
    )
    parser.add_argument("--max-length", type=int, help="cpu/gpu 2048, smoke 128")
    parser.add_argument("--out", type=Path, help="report JSON (a .md is written beside it in --gpu/--smoke)")
    gpu = parser.add_argument_group("--gpu / --smoke")
    gpu.add_argument(
        "--gpu", action="store_true", help="8B-class model on the CUDA GPU, methods x {lima, trl}"
    )
    gpu.add_argument(
        "--smoke", action="store_true", help="the --gpu code path on CPU with a tiny Llama, in-process"
    )
    gpu.add_argument("--methods", default="lora,qlora,full")
    gpu.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (gpu 2, smoke 1)")
    gpu.add_argument(
        "--timed-steps", type=int, default=None, help="timed steps at --batch-size (gpu 8, smoke 2)"
    )
    gpu.add_argument(
        "--qlora-batch-size", type=int, default=1, help="1: QLoRA's peak is at 2,048 tokens per step"
    )
    gpu.add_argument(
        "--full-layers", type=int, help="decoder layers of the full fine-tuning model (gpu 8, smoke 1)"
    )
    gpu.add_argument(
        "--peak-tflops", type=float, help="dense bf16 peak of the device (default: by device name)"
    )
    gpu.add_argument("--lengths", type=Path, help=f"lengths JSON (default {LENGTHS_FILE.relative_to(ROOT)})")
    gpu.add_argument(
        "--write-lengths", type=Path, help="tokenize LIMA's training set, write its lengths, exit"
    )
    gpu.add_argument(
        "--lima-set", nargs="*", default=[], metavar="KEY=VALUE", help="extra lima config overrides"
    )
    gpu.add_argument(
        "--isolate", action="store_true", help="--smoke: each run in its own subprocess, as --gpu does"
    )
    gpu.add_argument("--job-timeout", type=float, default=300, help="seconds per subprocess run")
    gpu.add_argument(
        "--work", help="where models and runs go (default: /dev/shm if it has 40 GiB free, else temp)"
    )
    gpu.add_argument("--keep-work", action="store_true")
    gpu.add_argument("--seed", type=int, default=0)
    gpu.add_argument("--job", help=argparse.SUPPRESS)
    cpu = parser.add_argument_group("--cpu-adapters")
    cpu.add_argument(
        "--cpu-adapters",
        action="store_true",
        help="QLoRA vs LoRA on CPU with lima (--model, default the embedded 135M): step time, peak RSS",
    )
    args = parser.parse_args()

    if args.job:
        print(json.dumps(run_job(json.loads(args.job))))
        return
    if args.write_lengths:
        write_lengths(args.write_lengths)
        return
    if args.cpu_adapters:
        args.model = args.model or "embedded:smollm2-135m-instruct"
        for key, value in {"warmup_steps": 1, "timed_steps": 3, "batch_size": 2, "max_length": 512}.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        args.lengths = args.lengths or LENGTHS_FILE
        args.out = args.out or ROOT / "bench" / "results" / "train_qlora_cpu.json"
        report = run_cpu_adapter_bench(args)
        print(f"-> {args.out}: {json.dumps(report.get('qlora_vs_lora'))}")
        return
    if args.gpu or args.smoke:
        defaults = {
            "warmup_steps": (1, 2),
            "timed_steps": (2, 8),
            "batch_size": (2, 4),
            "max_length": (128, 2048),
            "full_layers": (1, 8),
        }
        for key, (smoke_value, gpu_value) in defaults.items():
            if getattr(args, key) is None:
                setattr(args, key, smoke_value if args.smoke else gpu_value)
        args.lengths = args.lengths or LENGTHS_FILE
        if args.out is None:  # a smoke run never overwrites committed results
            smoke_out = Path(tempfile.gettempdir()) / "train_throughput_smoke.json"
            args.out = smoke_out if args.smoke else ROOT / "bench" / "results" / "train_throughput_gpu.json"
        report = run_gpu_bench(args)
        print(f"-> {args.out} ({report['device']})")
        return
    args.batch_size = args.batch_size or 8
    args.max_length = args.max_length or 2048
    args.out = args.out or ROOT / "bench" / "results" / "train_throughput_cpu.json"

    if args.child:
        import torch

        torch.manual_seed(0)
        row = child_lima(args) if args.child == "lima" else child_trl(args)
        print(json.dumps(row))
        return

    import torch

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    if args.model is None:
        from lima.core.tiny import build_tiny_model

        args.model = str(build_tiny_model(work / "model", hidden_size=128, num_layers=4, intermediate_size=256,
                                          max_position_embeddings=2048))  # fmt: skip
        model_desc = "tiny random Llama: 4 layers, hidden 128, 512-token BPE vocabulary"
    else:
        model_desc = args.model
    if args.data is None:
        sys.path.insert(0, str(ROOT))
        from tests.finetune.lima_data import write_lima_jsonl

        args.data = str(write_lima_jsonl(SHARED, work / "lima.jsonl", args.records))
    results = {side: _run_child(side, args) for side in ("lima", "trl")}
    speedup = results["lima"]["tokens_per_s"] / results["trl"]["tokens_per_s"]
    cpu = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu
    report = {
        "device": device,
        "model": model_desc,
        "data": f"{args.records} LIMA training records, max_length {args.max_length}",
        "settings": {"epochs": args.epochs, "batch_size": args.batch_size, "lora": LORA},
        "lima": results["lima"],
        "trl_sft_defaults": results["trl"],
        "speedup_tokens_per_s": round(speedup, 3),
        "target": ">= 1.5x on CPU",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for side in ("lima", "trl"):
        r = results[side]
        print(
            f"{side:5s} {r['tokens_per_s']:10.0f} tokens/s  peak {r['peak_memory_mb']:8.0f} MB  ({r['train_runtime_s']:.1f} s)"
        )
    print(f"speedup {speedup:.2f}x  -> {args.out}")


if __name__ == "__main__":
    main()
