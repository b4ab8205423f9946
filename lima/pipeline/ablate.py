"""`lima ablate`: LIMA's diversity / quality / quantity ablations as grids of arms.

Each arm is curated with its own curation config, trained with the shared train config, generated on the
same prompts and graded with the Likert judge. LIMA's protocol (§5): 5 sampled responses per prompt
(``generate.overrides.decoding.samples: 5``; ``samples:`` overrides it for every arm), each graded once
(``grade.overrides.samples: 1``); a prompt scores the mean of its responses' grades, an arm the mean over
prompts with a bootstrap CI. Finished arms are skipped on rerun; arms run in sequence, or one subprocess per
CUDA device with ``devices: [0, 1, ...]``.

    OUT/arms/<arm>/{curate,train,generate,grade}/   OUT/ablation.{json,md,png}   OUT/manifest.json
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import atomic_open, write_json
from lima.core.manifest import RunManifest
from lima.core.signals import child_env
from lima.core.suggest import unknown_name
from lima.pipeline.config import AblationConfig, Arm, load_stage, load_stages, resolve_path
from lima.pipeline.run import announce, curate_stage, generate_stage, grade_stage, train_stage
from lima.pipeline.stages import Stage, stage_key

RESULT = "arm_result.json"


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def run_arm(
    config: AblationConfig, arm: Arm, stages: dict[str, Any], out_dir: Path, base_dir: Path
) -> dict[str, Any]:
    """Curate → train → generate (last checkpoint) → grade, for one arm; returns its table row."""
    arm_dir = out_dir / "arms" / arm.name
    prompts = resolve_path(config.prompts, base_dir)
    curate_cfg = load_stage(arm.curate, "curate", base_dir)
    generate_cfg = sampled(stages["generate"], config.samples)
    grade_cfg = stages["grade"]
    arm_stage = Stage(out_dir / "arms", arm.name)
    key = stage_key(
        {
            "arm": arm.model_dump(),
            "curate": curate_cfg.model_dump(mode="json"),
            "train": stages["train"].model_dump(mode="json"),
            "generate": generate_cfg.model_dump(mode="json"),
            "grade": grade_cfg.model_dump(mode="json"),
            "limit": config.prompt_limit,
        },
        [prompts],
    )
    if arm_stage.is_done(key):
        announce(f"arm {arm.name}: finished before, skipped")
        return json.loads((arm_dir / RESULT).read_text())
    arm_stage.begin(key)  # same key: the stages inside continue where they stopped
    skipped: list[str] = []
    with RunManifest(
        arm_dir,
        f"ablate:{arm.name}",
        {"arm": arm.model_dump(), "curate": curate_cfg.model_dump(mode="json")},
        seed=config.seed,
    ):
        train_path, dev_path = curate_stage(curate_cfg, arm_dir, skipped)
        n_train = _count_lines(train_path)
        if n_train == 0:
            raise LimaError(f"arm {arm.name}: curation kept no examples; check its inputs and filters")
        checkpoints = train_stage(stages["train"], arm_dir, train_path, dev_path, skipped)
        generations = generate_stage(
            generate_cfg,
            arm_dir,
            {"model": str(checkpoints[-1])},
            prompts,
            config.prompt_limit,
            skipped,
            fingerprints=[checkpoints[-1] / "lima_checkpoint.json"],
        )
        grade = grade_stage(grade_cfg, arm_dir, generations, grade_cfg.samples, skipped)["model"]
    row = {
        "arm": arm.name,
        "label": arm.label or arm.name,
        "train_examples": n_train,
        "size": arm.size or n_train,
        "mean": grade.get("mean"),
        "ci95": grade.get("ci95"),
        # Every count named for what it counts: a prompt is graded when at least one of its responses got a
        # parseable grade; the mean and CI are over graded prompts only.
        "prompts": grade.get("prompts"),
        "prompts_graded": grade.get("n"),
        "responses": grade.get("lines"),
        "responses_graded": grade.get("responses_graded"),
        "grades_requested": (grade.get("lines") or 0) * grade_cfg.samples,
        "grades_unparseable": grade.get("failed_samples"),
        "responses_per_prompt": generate_cfg.decoding.samples,
        "grades_per_response": grade_cfg.samples,
    }
    write_json(arm_dir / RESULT, row)
    arm_stage.finish(key, {"result": str(arm_dir / RESULT)})
    return row


def sampled(generate_cfg: Any, samples: int | None) -> Any:
    """The generate config with ``samples`` responses per prompt (when given)."""
    if samples is None:
        return generate_cfg
    decoding = generate_cfg.decoding.model_copy(update={"samples": samples})
    return generate_cfg.model_copy(update={"decoding": decoding})


def run_ablation(
    config: AblationConfig, out_dir: Path, config_path: Path, only_arm: str | None = None
) -> list[dict[str, Any]]:
    base_dir = config_path.resolve().parent
    stages = load_stages(
        {"train": config.train, "generate": config.generate, "grade": config.grade}, base_dir
    )
    load_stages(
        {f"curate:{arm.name}": arm.curate for arm in config.arms}, base_dir
    )  # validate all arms up front
    names = [arm.name for arm in config.arms]
    if len(set(names)) != len(names):
        raise LimaError(f"{config_path}: arm names must be unique ({', '.join(names)})")
    if only_arm is not None and only_arm not in names:
        raise LimaError(unknown_name("arm", only_arm, names))
    if not resolve_path(config.prompts, base_dir).exists():
        raise LimaError(f"prompts: {config.prompts} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    if only_arm is not None:  # a worker process for one arm (see _spread)
        arm = next(a for a in config.arms if a.name == only_arm)
        return [run_arm(config, arm, stages, out_dir, base_dir)]
    with RunManifest(
        out_dir, "ablate", config, inputs=[resolve_path(config.prompts, base_dir)], seed=config.seed
    ) as manifest:
        if config.devices:
            _spread(config, out_dir, config_path)
            rows = [json.loads((out_dir / "arms" / a.name / RESULT).read_text()) for a in config.arms]
        else:
            rows = [run_arm(config, arm, stages, out_dir, base_dir) for arm in config.arms]
        write_ablation_outputs(config, rows, out_dir)
        manifest.update(rows=rows)
    return rows


def _spread(config: AblationConfig, out_dir: Path, config_path: Path) -> None:
    """One `lima ablate --arm NAME` subprocess per device, as many at a time as there are devices."""
    pending = list(config.arms)
    running: list[tuple[subprocess.Popen, str, str]] = []
    failed: list[str] = []
    free = list(config.devices)
    try:
        _run_arms(config, out_dir, config_path, pending, running, failed, free)
    finally:  # interrupted or failed: stop the arms still running (each keeps its finished stages)
        for proc, _name, _device in running:
            if proc.poll() is None:
                proc.terminate()
        for proc, _name, _device in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
    if failed:
        raise LimaError(
            f"arms failed: {', '.join(failed)} (their finished stages are kept; rerun to continue)"
        )


def _run_arms(
    config: AblationConfig,
    out_dir: Path,
    config_path: Path,
    pending: list,
    running: list[tuple[subprocess.Popen, str, str]],
    failed: list[str],
    free: list,
) -> None:
    while pending or running:
        while pending and free:
            arm, device = pending.pop(0), free.pop(0)
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(device)}
            cmd = [
                sys.executable,
                "-m",
                "lima",
                "ablate",
                str(config_path),
                "--out",
                str(out_dir),
                "--arm",
                arm.name,
            ]
            announce(f"arm {arm.name} on device {device}")
            running.append((subprocess.Popen(cmd, env=child_env(env)), arm.name, device))
        for proc, name, device in list(running):
            if proc.poll() is not None:
                running.remove((proc, name, device))
                free.append(device)
                if proc.returncode != 0:
                    failed.append(name)
        if running:
            time.sleep(1)


def write_ablation_outputs(config: AblationConfig, rows: list[dict[str, Any]], out_dir: Path) -> None:
    write_json(out_dir / "ablation.json", {"name": config.name, "kind": config.kind, "rows": rows})
    lines = [
        f"# Ablation: {config.name} ({config.kind})",
        "",
        "| arm | training examples | mean helpfulness (1-6) | 95% CI | prompts graded | responses graded "
        "| unparseable grades |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = r.get("ci95") or [None, None]
        mean = f"{r['mean']:.2f}" if r.get("mean") is not None else "n/a"
        cis = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if None not in ci else "n/a"
        lines.append(
            f"| {r['label']} | {_train_examples(r)} | {mean} | {cis} | {r.get('prompts_graded')} of "
            f"{r.get('prompts')} | {r.get('responses_graded')} of {r.get('responses')} | "
            f"{r.get('grades_unparseable')} of {r.get('grades_requested')} |"
        )
    lines += ["", _sampling_note(rows)]
    if any(r.get("prompts_graded") != r.get("prompts") for r in rows):
        lines += ["", "Prompts without a single parseable grade are left out of that arm's mean and CI."]
    with atomic_open(out_dir / "ablation.md") as fh:
        fh.write("\n".join(lines) + "\n\n![ablation](ablation.png)\n")
    plot_ablation(config, rows, out_dir / "ablation.png")


def _train_examples(row: dict[str, Any]) -> Any:
    return row.get("train_examples", row.get("n"))  # "n" in results written before it was named


def arm_line(row: dict[str, Any]) -> str:
    """One console line per arm: the mean with its CI, and what the counts behind it are."""
    ci = row.get("ci95") or [None, None]
    mean = f"{row['mean']:.2f}" if row.get("mean") is not None else "n/a"
    cis = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if None not in ci else "n/a"
    return (
        f"{row['label']}: mean helpfulness {mean} (95% CI {cis}); prompts graded {row.get('prompts_graded')} "
        f"of {row.get('prompts')}, responses graded {row.get('responses_graded')} of {row.get('responses')}, "
        f"unparseable grades {row.get('grades_unparseable')} of {row.get('grades_requested')}; "
        f"trained on {_train_examples(row)} examples"
    )


def _sampling_note(rows: list[dict[str, Any]]) -> str:
    """What was sampled, in words (LIMA: 5 responses per prompt, each graded once)."""
    protocols = {
        (r.get("responses_per_prompt"), r.get("grades_per_response"), r.get("prompts")) for r in rows
    }
    if len(protocols) != 1 or None in next(iter(protocols)):
        return "Sampling differs between arms; see ablation.json (responses_per_prompt, grades_per_response)."
    k, g, n = next(iter(protocols))
    return (
        f"Per prompt: {k} sampled response(s), each graded {g} time(s); a prompt scores the mean of its "
        f"grades, an arm the mean over its graded prompts, of {n} asked (95% bootstrap CI over prompts)."
    )


def plot_ablation(config: AblationConfig, rows: list[dict[str, Any]], path: Path) -> None:
    """LIMA's Figure 5 (bars with 95% CIs per arm) or Figure 6 (helpfulness vs. training-set size, log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = [r.get("mean") or 0.0 for r in rows]
    lows, highs = [], []
    for mean, row in zip(means, rows, strict=True):
        ci = row.get("ci95")
        known = bool(ci) and None not in ci
        lows.append(max(0.0, mean - ci[0]) if known else 0.0)
        highs.append(max(0.0, ci[1] - mean) if known else 0.0)
    fig, ax = plt.subplots(figsize=(6, 4))
    if config.kind == "quantity":
        sizes = [r["size"] for r in rows]
        ax.errorbar(sizes, means, yerr=[lows, highs], fmt="o-", capsize=4)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training examples")
    else:
        ax.bar([r["label"] for r in rows], means, yerr=[lows, highs], capsize=6, color="#4c72b0")
        ax.set_xlabel("training set")
    ax.set_ylim(1, 6)
    ax.set_ylabel("generation quality (1-6)")
    ax.set_title(f"{config.name}: {config.kind} ablation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
