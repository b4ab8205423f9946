"""lima estimate against the real step: the fake-tensor estimate of one training step vs the same step run on
real weights (``prepare_model``: the real loading path, 4-bit base included) and measured by
``torch.cuda.max_memory_allocated`` on a GPU (on CPU: the same tracer on real tensors).

    python bench/estimate_check.py --model DIR [--methods lora,qlora] [--max-length 1024] --out FILE.json

DIR is a model directory with weights and tokenizer (bench/gpu_check.sh passes the 8B-shaped model the
throughput bench built). The report is rewritten after each method, so a timeout keeps what finished.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import torch

from lima.core.config import load_config
from lima.finetune.config import TrainConfig
from lima.finetune.estimate import GIB, compute_dtype, measure_step, run_step


def check(method: str, model: str, max_length: int, overrides: list[str]) -> dict:
    from lima.finetune.model import prepare_model

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    config = load_config(f"configs/train/lima_{method}.yaml", TrainConfig,
                         [f"model={model}", "batch_size=1", f"max_length={max_length}", *overrides])  # fmt: skip
    t0 = time.perf_counter()
    estimate = measure_step(config, 1, device=device)
    row: dict = {"estimate_gib": round(estimate.peak / GIB, 3), "estimate_s": round(time.perf_counter() - t0, 1),
                 "breakdown_gib": {k: round(v / GIB, 3) for k, v in estimate.breakdown.items()}}  # fmt: skip
    prepared = prepare_model(config, device=torch.device(device))
    model_ = prepared.model
    if cuda and config.method != "qlora":
        model_.to("cuda")
    if config.gradient_checkpointing:
        model_.activation_checkpointing_enable()
    model_.train()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    trace = run_step(model_, config, prepared.batching, 1, max_length, compute_dtype(config, device), device,
                     fused=cuda)  # fmt: skip
    measured = torch.cuda.max_memory_allocated() if cuda else trace.peak
    row.update(measured_gib=round(measured / GIB, 3), traced_real_gib=round(trace.peak / GIB, 3),
               ratio=round(estimate.peak / measured, 4), within_10pct=abs(estimate.peak - measured) <= 0.1 * measured,
               measured_by="torch.cuda.max_memory_allocated" if cuda else "MemoryTrace on real CPU tensors")  # fmt: skip
    del model_, prepared
    if cuda:
        torch.cuda.empty_cache()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--methods", default="lora,qlora")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    report: dict = {"device": device, "max_length": args.max_length, "results": {}}
    for method in args.methods.split(","):
        try:
            report["results"][method] = check(method, args.model, args.max_length, args.set)
        except Exception as exc:  # recorded, and the next method still runs
            report["results"][method] = {
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-2000:],
            }
        print(
            json.dumps({method: {k: v for k, v in report["results"][method].items() if k != "trace"}}),
            flush=True,
        )
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    report["ok"] = all(r.get("within_10pct") for r in report["results"].values())
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
