"""Training throughput: ``lima train`` versus plain TRL ``SFTTrainer`` with its defaults, in one run.

Same model, same records, same LoRA settings, same max length, epochs and per-device batch size; everything
else is each side's default (TRL: right-padded batches, gradient checkpointing on; lima: padding-free
batches). Each side runs in its own subprocess so peak memory (max RSS on CPU, max allocated on CUDA) is its
own. Tokens/s counts real (non-padding) tokens: the dataset's token count x epochs / training wall time.

    python bench/train_throughput.py                      # CPU: a tiny random Llama, real LIMA lengths
    python bench/train_throughput.py --records 64 --out bench/results/train_throughput_cpu.json

Real LIMA records come from ../shared/data/lima/lima_train_1k_fastchat.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
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
    return {"train_runtime_s": manifest["train_runtime_s"], "tokens": tokens, "peak_memory_mb": _peak_memory_mb()}


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
    return {"train_runtime_s": output.metrics["train_runtime"], "tokens": tokens, "peak_memory_mb": _peak_memory_mb()}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=["lima", "trl"])
    parser.add_argument("--model", help="model directory (default: a tiny random Llama built here)")
    parser.add_argument("--data", help="records JSONL (default: the first --records LIMA examples)")
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_throughput_cpu.json")
    args = parser.parse_args()

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
        print(f"{side:5s} {r['tokens_per_s']:10.0f} tokens/s  peak {r['peak_memory_mb']:8.0f} MB  ({r['train_runtime_s']:.1f} s)")
    print(f"speedup {speedup:.2f}x  -> {args.out}")


if __name__ == "__main__":
    main()
