"""Checkpoint selection. LIMA picked a checkpoint between epochs 5 and 10 by hand on 50 dev prompts; here
the judge does it: each candidate's dev generations are judged against the best so far (a single-elimination
ladder in epoch order); alternatives are the lowest dev loss or simply the last epoch."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lima.core.checkpoint import checkpoint_info as read_checkpoint_info
from lima.core.errors import LimaError
from lima.pipeline.config import SelectConfig


def checkpoint_info(path: Path) -> dict[str, Any]:
    info = read_checkpoint_info(path)
    if info is None:
        raise LimaError(f"{path}: not a lima checkpoint (no lima_checkpoint.json)")
    return info


def candidates_in_range(
    config: SelectConfig, checkpoints: list[Path]
) -> list[tuple[int, Path, dict[str, Any]]]:
    infos = [(p, checkpoint_info(p)) for p in checkpoints]
    found = [(info["epoch"], p, info) for p, info in infos]
    if not found:
        raise LimaError("training produced no checkpoints to select from")
    inside = [
        c
        for c in found
        if c[0] >= config.min_epoch and (config.max_epoch is None or c[0] <= config.max_epoch)
    ]
    # A range beyond the epochs trained (e.g. a short demo run of LIMA's 5..10) falls back to all epochs.
    return sorted(inside or found, key=lambda c: c[0])


def finite_loss(value: Any) -> float | None:
    """A dev loss to compare, or None: missing, or NaN/inf from a diverged run (older checkpoints hold raw
    NaN; newer ones write null)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _lowest_dev_loss(table: list[dict[str, Any]]) -> tuple[int, list[int]]:
    """Index of the lowest finite dev loss, and the epochs skipped for having none."""
    usable = [i for i, row in enumerate(table) if row["dev_loss"] is not None]
    if not usable:
        raise LimaError(
            "select.strategy=dev_loss needs a dev set and a finite dev loss, and no checkpoint has one (no dev "
            "split, or training diverged): configure a dev split in curation or use select.strategy=last"
        )
    skipped = [row["epoch"] for i, row in enumerate(table) if i not in usable]
    return min(usable, key=lambda i: table[i]["dev_loss"]), skipped


def select_checkpoint(
    config: SelectConfig,
    checkpoints: list[Path],
    dev_path: Path | None,
    generate_config: Any,
    judge_config: Any,
    out_dir: Path,
) -> dict[str, Any]:
    candidates = candidates_in_range(config, checkpoints)
    table = [
        {"epoch": e, "checkpoint": str(p), "dev_loss": finite_loss(info.get("dev_loss"))}
        for e, p, info in candidates
    ]
    strategy = config.strategy
    note = None
    if strategy == "judge" and (dev_path is None or len(candidates) == 1):
        note = "no dev set" if dev_path is None else "one candidate"
        strategy = (
            "dev_loss" if dev_path is not None and any(r["dev_loss"] is not None for r in table) else "last"
        )
    if strategy == "last":
        chosen = len(candidates) - 1
    elif strategy == "dev_loss":
        chosen, skipped = _lowest_dev_loss(table)
        if skipped:
            note = "; ".join(filter(None, [note, f"epochs {skipped} skipped: no finite dev_loss"]))
    else:
        chosen = _judge_ladder(config, candidates, table, dev_path, generate_config, judge_config, out_dir)
    for i, row in enumerate(table):
        row["selected"] = i == chosen
    return {
        "strategy": strategy,
        "requested_strategy": config.strategy,
        "note": note,
        "selected": table[chosen]["checkpoint"],
        "selected_epoch": table[chosen]["epoch"],
        "table": table,
    }


def _judge_ladder(config, candidates, table, dev_path, generate_config, judge_config, out_dir: Path) -> int:
    from lima.eval.generate import run_generation
    from lima.eval.judge import run_judging

    gens = []
    for epoch, path, _ in candidates:
        gens.append(
            run_generation(
                generate_config,
                out_dir / "generations" / f"epoch-{epoch}.jsonl",
                model=str(path),
                prompts=dev_path,
                limit=config.dev_prompts,
            )
        )
    best = 0
    table[0]["vs"] = None
    for i in range(1, len(candidates)):
        summary = run_judging(
            judge_config,
            gens[i],
            gens[best],
            out_dir / "judge" / f"epoch-{candidates[i][0]}-vs-epoch-{candidates[best][0]}",
        )
        table[i]["vs"] = candidates[best][0]
        table[i]["win_rate"] = summary.get("win_rate")
        table[i]["wins"], table[i]["ties"], table[i]["losses"] = (
            summary.get("wins"),
            summary.get("ties"),
            summary.get("losses"),
        )
        # win_rate is a percentage with ties counted half: an all-tie round keeps the incumbent
        if (summary.get("win_rate") or 0.0) > 50.0:
            best = i
    return best
