"""Peak GPU memory of one training step for the three 8B configs, from lima estimate (CPU only, no weights).

    python bench/estimate_memory.py [--out bench/results/estimate_8b]

Llama-3.1-8B shape (configs/models/llama-3.1-8b-shape: config.json only), 2,048 tokens, micro-batch 1, the
shipped configs (gradient checkpointing on). Each change to the memory path is measured here: ``chunked``
is the chunked cross-entropy (lima.finetune.loss) against the model's own loss (``hf_loss``).
Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lima.core.config import load_config
from lima.finetune.config import TrainConfig
from lima.finetune.estimate import GIB, estimate, measure_step

MODEL = "configs/models/llama-3.1-8b-shape"
RUNS = [  # name, config, gpus, goal GiB per GPU
    ("qlora", "configs/train/lima_qlora.yaml", 1, 8.0),
    ("lora", "configs/train/lima_lora.yaml", 1, 18.0),
    ("full_fsdp8", "configs/train/lima.yaml", 8, 78.5),  # an 80 GB card less lima estimate's reserve
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/estimate_8b")
    args = parser.parse_args()
    rows = {}
    for name, path, gpus, goal in RUNS:
        config = load_config(path, TrainConfig, [f"model={MODEL}", "batch_size=1", "max_length=2048"])
        t0 = time.perf_counter()
        est = estimate(config, gpus=gpus)
        row = {"config": path, "gpus": gpus, "goal_gib": goal, **est.to_json(),
               "meets_goal": est.peak_gib <= goal, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        if gpus == 1:  # the same step with the model's own loss (full logits): what the chunked loss saves
            hf = measure_step(config, 1, chunked=False)
            row["hf_loss_peak_gib"] = round(hf.peak / GIB, 3)
            row["hf_loss_logits_loss_gib"] = round(hf.breakdown["logits_loss"] / GIB, 3)
        rows[name] = row
        print(json.dumps({name: row}), flush=True)
        out = Path(args.out)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    terms = ("weights", "weight_casts", "trainable", "gradients", "optimizer", "activations", "logits_loss",
             "gathered")  # fmt: skip
    lines = ["| config | GPUs | peak GiB/GPU | goal | " + " | ".join(terms) + " | peak with HF loss |",
             "|---" * (len(terms) + 5) + "|"]  # fmt: skip
    for name, r in rows.items():
        cells = [f"{r['breakdown'].get(t, 0):.2f}" for t in terms]
        hf = f"{r['hf_loss_peak_gib']:.2f}" if "hf_loss_peak_gib" in r else "-"
        lines.append(
            f"| {name} | {r['gpus']} | {r['peak_gib']:.2f} | {r['goal_gib']} | "
            + " | ".join(cells)
            + f" | {hf} |"
        )
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
