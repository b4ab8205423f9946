"""``lima train`` and ``lima export``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def train(
    config: Path = typer.Argument(..., help="A train config, e.g. configs/train/demo.yaml."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. epochs=3 lora.r=8."),
    data: Path = typer.Option(None, "--data", help="Training records (JSONL); overrides the config's data."),
    dev: Path = typer.Option(None, "--dev", help="Dev records (JSONL) for a loss per epoch."),
    out: Path = typer.Option(None, "--out", help="Run directory (default runs/train-<config name>)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its last resume state."
    ),
) -> None:
    """Fine-tune a model on example records (LoRA, QLoRA, DoRA or full) with LIMA's recipe."""
    from lima.core.cli_util import files_matching, raise_on_sigterm
    from lima.core.config import load_config
    from lima.core.lock import LOCK_NAME, OutputLock
    from lima.core.outputs import check_out_dir
    from lima.core.signals import on_interrupt
    from lima.finetune.config import TrainConfig

    raise_on_sigterm()
    train_config = load_config(config, TrainConfig, overrides or [])
    out_dir = check_out_dir(out or Path("runs") / f"train-{config.stem}")
    from lima.finetune.run import run_training

    resume_argv = [*sys.argv[1:], *([] if out else ["--out", str(out_dir)])]
    on_interrupt(  # training continues only with --resume (without it, a run starts over)
        lambda: files_matching(out_dir / "checkpoints", "epoch-*", "finished epochs"),
        resume="lima " + shlex.join(resume_argv + ([] if resume else ["--resume"])),
    )
    with OutputLock(out_dir / LOCK_NAME, f"--out {out_dir}"):
        result = run_training(train_config, out_dir, data=data, dev=dev, resume=resume)
    for epoch in result.epochs:
        dev_loss = epoch.get("dev_loss")
        typer.echo(
            f"epoch {epoch['epoch']}: train_loss {epoch['train_loss']:.4f}"
            + (f"  dev_loss {dev_loss:.4f}" if dev_loss is not None else "")
            + f"  -> {epoch['checkpoint']}"
        )
    typer.echo(f"final checkpoint: {result.final_checkpoint}")


def export(
    run_dir: Path = typer.Argument(..., help="A run directory from lima train, or one of its checkpoints."),
    out: Path = typer.Option(None, "--out", help="Where to write the merged model (default RUN_DIR/export)."),
) -> None:
    """Merge an adapter into full safetensors weights, with the tokenizer (a plain HF model directory)."""
    from lima.finetune.export import export_checkpoint

    target = export_checkpoint(run_dir, out)
    typer.echo(f"exported: {target}")


def estimate(
    config: Path = typer.Argument(..., help="A train config, e.g. configs/train/lima_qlora.yaml."),
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides, e.g. batch_size=1 max_length=4096."
    ),
    gpus: int = typer.Option(
        1, "--gpus", help="GPUs the run shards over (FSDP/ZeRO-3); the peak is per GPU."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (peak_gib, breakdown, cards)."),
) -> None:
    """Peak GPU memory of one training step, without a GPU or weights (a config.json is enough)."""
    import json

    from lima.core.config import load_config
    from lima.finetune.config import TrainConfig
    from lima.finetune.estimate import estimate as run_estimate
    from lima.finetune.estimate import format_estimate

    train_config = load_config(config, TrainConfig, overrides or [])
    result = run_estimate(train_config, gpus=gpus)
    if as_json:
        typer.echo(json.dumps({"config": str(config), "model": train_config.model, "method": train_config.method,
                               **result.to_json()}))  # fmt: skip
    else:
        typer.echo(format_estimate(result, train_config))


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate)
    app.command("train")(train)
    app.command("export")(export)
