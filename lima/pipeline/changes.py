"""What fine-tuning changed, measured without a judge: the dev loss before the first step and after each
epoch, and for the model and each baseline the answers' length, how many ended at the end of turn (rather than
being cut at ``max_new_tokens``) and how many are identical, character for character, to the base model's.

A small judge (the embedded 135M) cannot separate two answers; these numbers can still show whether training
did anything, so the run report leads with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lima.core.io import read_jsonl_rows
from lima.finetune.run import dev_loss_before_training


def is_cut(record: dict[str, Any]) -> bool:
    """True when a generation stopped at ``max_new_tokens`` instead of at the end of its turn."""
    return (record.get("settings") or {}).get("finish") == "length"


def _key(record: dict[str, Any]) -> tuple[str, int]:
    return str(record.get("prompt_id")), int(record.get("sample") or 0)


def answer_stats(records: list[dict[str, Any]], base: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """n, mean length (characters, new tokens), the share that ended at end-of-turn, the share cut at the
    token limit, and (given the base model's answers) the share identical to the base model's answer to the
    same prompt and sample."""
    n = len(records)
    known_finish = [r for r in records if (r.get("settings") or {}).get("finish") in ("stop", "length")]
    tokens = [r["settings"]["new_tokens"] for r in records if (r.get("settings") or {}).get("new_tokens")]
    stats: dict[str, Any] = {
        "answers": n,
        "mean_chars": sum(len(r.get("output") or "") for r in records) / n if n else None,
        "mean_new_tokens": sum(tokens) / len(tokens) if tokens else None,
        "ended_at_eot": (
            sum(not is_cut(r) for r in known_finish) / len(known_finish) if known_finish else None
        ),
        "cut_at_limit": sum(is_cut(r) for r in known_finish) / len(known_finish) if known_finish else None,
    }
    if base is not None:
        base_by_key = {_key(r): r.get("output") for r in base}
        paired = [r for r in records if _key(r) in base_by_key]
        stats["identical_to_base"] = (
            sum((r.get("output") or "") == base_by_key[_key(r)] for r in paired) / len(paired)
            if paired
            else None
        )
        stats["compared_with_base"] = len(paired)
    return stats


def dev_loss_rows(train_dir: Path) -> list[dict[str, Any]]:
    """Dev loss per epoch, led by "epoch 0 (before training)" when the run measured it."""
    rows: list[dict[str, Any]] = []
    if (train_dir / "epochs.jsonl").is_file() and (before := dev_loss_before_training(train_dir)) is not None:
        rows.append({"epoch": "0 (before training)", "dev_loss": before})
    for row in read_jsonl_rows(train_dir / "epochs.jsonl"):
        rows.append(
            {"epoch": str(row["epoch"]), "dev_loss": row.get("dev_loss"), "train_loss": row.get("train_loss")}
        )
    return rows


def answer_rows(generations: dict[str, Path], base_name: str | None) -> list[dict[str, Any]]:
    """One row per model (the fine-tuned one, then each baseline)."""
    loaded = {name: read_jsonl_rows(path) for name, path in generations.items()}
    base = loaded.get(base_name) if base_name else None
    rows = []
    for name, records in loaded.items():
        stats = answer_stats(records, base if name != base_name else None)
        if name == base_name:
            stats["identical_to_base"] = None  # itself
        rows.append({"model": name, **stats})
    return rows


def base_baseline(baselines: list[Any], trained_model: str | None) -> str | None:
    """The baseline that is the model before fine-tuning: the one generated from the train config's model,
    else one named "base"."""
    for baseline in baselines:
        if trained_model and getattr(baseline, "model", None) == trained_model:
            return baseline.name
    return next((b.name for b in baselines if b.name == "base"), None)


def changes_summary(train_dir: Path, generations: dict[str, Path], base_name: str | None) -> dict[str, Any]:
    return {
        "base": base_name,
        "dev_loss": dev_loss_rows(train_dir),
        "answers": answer_rows(generations, base_name),
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The table as a few console lines for `lima run`."""
    lines = []
    losses = [r for r in summary["dev_loss"] if r.get("dev_loss") is not None]
    if losses:
        when = [("before training" if r["epoch"].startswith("0 ") else f"epoch {r['epoch']}") for r in losses]
        lines.append(
            "dev loss: "
            + " -> ".join(f"{r['dev_loss']:.3f} ({w})" for r, w in zip(losses, when, strict=True))
        )
    for row in summary["answers"]:
        parts = [f"{row['model']}: {row['answers']} answers"]
        if row.get("mean_chars") is not None:
            parts.append(f"mean {row['mean_chars']:.0f} chars")
        if row.get("ended_at_eot") is not None:
            parts.append(f"{100 * row['ended_at_eot']:.0f}% ended at end-of-turn")
        if row.get("identical_to_base") is not None:
            parts.append(f"{100 * row['identical_to_base']:.0f}% identical to {summary['base']}")
        lines.append(", ".join(parts))
    return lines
