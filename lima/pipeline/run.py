"""`lima run`: curate → train → select checkpoint → generate → judge (→ grade) → report, in one run dir.

    OUT/curate/  OUT/train/  OUT/select/  OUT/generate/  OUT/judge/<baseline>/  OUT/grade/<model>/
    OUT/report.html  OUT/report.md  OUT/manifest.json

Each stage has its own folder and manifest; a rerun skips stages whose config and inputs are unchanged and
continues an unfinished one (curation shards, training --resume, the judge cache).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from lima.core.errors import LimaError
from lima.core.manifest import RunManifest
from lima.pipeline.changes import base_baseline, changes_summary
from lima.pipeline.config import ExperimentConfig, load_stages, resolve_path
from lima.pipeline.select import select_checkpoint
from lima.pipeline.stages import Stage, stage_key

console = Console(stderr=True)


@dataclass
class RunResult:
    out_dir: Path
    train_path: Path
    dev_path: Path | None
    checkpoint: Path
    selection: dict[str, Any]
    generations: dict[str, Path]
    judgments: dict[str, dict[str, Any]] = field(default_factory=dict)
    grades: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None  # the judge's agreement with humans (calibrate stage)
    changes: dict[str, Any] | None = None  # what fine-tuning changed, without a judge (lima.pipeline.changes)
    report_html: Path | None = None
    skipped: list[str] = field(default_factory=list)


def announce(message: str) -> None:
    console.print(f"[bold cyan]lima run[/bold cyan] {message}")


def run_experiment(config: ExperimentConfig, out_dir: Path, config_path: Path | None = None) -> RunResult:
    base_dir = (config_path or Path.cwd()).resolve().parent
    # Validate every stage config before anything heavy loads: all problems at once.
    stages = load_stages(
        {
            "curate": config.curate,
            "train": config.train,
            "generate": config.generate,
            "judge": config.judge,
            "grade": config.grade,
        },
        base_dir,
    )
    test_prompts = resolve_path(config.test_prompts, base_dir)
    if not test_prompts.exists():
        raise LimaError(f"test_prompts: {test_prompts} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    with RunManifest(out_dir, "run", config, inputs=[test_prompts], seed=config.seed) as manifest:
        train_path, dev_path = _curate(config, stages, out_dir, base_dir, skipped)
        checkpoints = train_stage(stages["train"], out_dir, train_path, dev_path, skipped)
        calibration = calibrate_stage(config.calibrate, stages["judge"], out_dir, base_dir, skipped)
        if calibration is not None and stages["judge"].calibration_labels is None:
            # every judge summary of this run shows this calibration, not whichever the store holds
            labels = str(resolve_path(config.calibrate.labels, base_dir))
            stages["judge"] = stages["judge"].model_copy(update={"calibration_labels": labels})
        selection = _select(config, stages, out_dir, checkpoints, dev_path, skipped)
        checkpoint = Path(selection["selected"])
        generations = _generate(config, stages, out_dir, checkpoint, test_prompts, base_dir, skipped)
        judgments = _judge(stages["judge"], out_dir, generations, skipped)
        grades = grade_stage(stages.get("grade"), out_dir, generations, config.grade_samples, skipped)
        base = base_baseline(config.baselines, getattr(stages["train"], "model", None))
        changes = changes_summary(out_dir / "train", generations, base)
        result = RunResult(
            out_dir,
            train_path,
            dev_path,
            checkpoint,
            selection,
            generations,
            judgments,
            grades,
            calibration=calibration,
            changes=changes,
            skipped=skipped,
        )
        from lima.pipeline.report import write_run_report

        result.report_html = write_run_report(result, config)
        manifest.update(
            outputs={"report": str(result.report_html), "checkpoint": str(checkpoint)},
            skipped_stages=skipped,
            win_rates={name: s.get("win_rate") for name, s in judgments.items()},
            changes=changes,
        )
    return result


def _curate(config, stages, out_dir: Path, base_dir: Path, skipped: list[str]) -> tuple[Path, Path | None]:
    if config.curate is None:
        train = resolve_path(config.data, base_dir)
        dev = resolve_path(config.dev, base_dir) if config.dev else None
        return train, dev
    return curate_stage(stages["curate"], out_dir, skipped)


def curate_stage(cfg, run_dir: Path, skipped: list[str]) -> tuple[Path, Path | None]:
    from lima.curation.run import run_curation

    stage = Stage(run_dir, "curate")
    key = stage_key(cfg)
    if stage.is_done(key):
        skipped.append("curate")
        announce("curate: unchanged, skipped")
        outputs = stage.outputs()
        return Path(outputs["train"]), Path(outputs["dev"]) if outputs.get("dev") else None
    stage.begin(key)  # curation skips its finished shards itself
    announce("curate …")
    result = run_curation(cfg, stage.dir)
    stage.finish(
        key, {"train": str(result.train_path), "dev": str(result.dev_path) if result.dev_path else None}
    )
    return result.train_path, result.dev_path


def train_stage(
    cfg, run_dir: Path, train_path: Path, dev_path: Path | None, skipped: list[str]
) -> list[Path]:
    from lima.finetune.run import latest_resume_state, run_training

    stage = Stage(run_dir, "train")
    key = stage_key(cfg, [train_path, dev_path])
    if stage.is_done(key):
        skipped.append("train")
        announce("train: unchanged, skipped")
        return [Path(p) for p in stage.outputs()["checkpoints"]]
    resume = False
    if stage.begin(key):  # same inputs as an unfinished run: continue from its newest resume state
        resume = latest_resume_state(stage.dir) is not None
        if not resume:  # killed before its first state was saved: nothing to keep
            stage.reset(key)
    announce("train (resuming) …" if resume else "train …")
    result = run_training(cfg, stage.dir, data=train_path, dev=dev_path, resume=resume)
    stage.finish(key, {"checkpoints": [str(p) for p in result.checkpoints], "epochs": result.epochs})
    return list(result.checkpoints)


def calibrate_stage(
    cal, judge_cfg, run_dir: Path, base_dir: Path, skipped: list[str]
) -> dict[str, Any] | None:
    """Run ``lima calibrate`` with the experiment's judge; the result is stored under the judge's hash, so
    the selection and judge summaries that follow carry it."""
    if cal is None:
        return None
    from lima.eval.calibrate import run_calibration, store_calibration, stored_block

    labels = resolve_path(cal.labels, base_dir)
    if not labels.is_file():
        raise LimaError(f"calibrate.labels: {labels} not found")
    stage = Stage(run_dir, "calibrate")
    key = stage_key({"judge": judge_cfg.model_dump(mode="json"), "calibrate": cal.model_dump()}, [labels])
    if stage.is_done(key):
        skipped.append("calibrate")
        announce("calibrate: unchanged, skipped")
        result = json.loads((stage.dir / "calibration.json").read_text())
        store_calibration(judge_cfg, stored_block(result))  # the user-level store may have been cleared
        return result
    stage.begin(key)  # the judge cache inside makes a continued run send nothing twice
    announce(f"calibrate the judge on {labels.name} …")
    result = run_calibration(judge_cfg, labels, cal.format, stage.dir, limit=cal.limit)
    stage.finish(key, {"calibration": str(stage.dir / "calibration.json")})
    return result


def _select(
    config, stages, out_dir: Path, checkpoints: list[Path], dev_path, skipped: list[str]
) -> dict[str, Any]:
    stage = Stage(out_dir, "select")
    inputs = [p / "lima_checkpoint.json" for p in checkpoints] + [dev_path]
    key = stage_key(
        {
            "select": config.select.model_dump(),
            "generate": stages["generate"].model_dump(mode="json"),
            "judge": stages["judge"].model_dump(mode="json"),
        },
        inputs,
    )
    if stage.is_done(key):
        skipped.append("select")
        announce("select: unchanged, skipped")
        return stage.outputs()
    stage.begin(key)
    announce(f"select a checkpoint ({config.select.strategy}) …")
    selection = select_checkpoint(
        config.select, checkpoints, dev_path, stages["generate"], stages["judge"], stage.dir
    )
    stage.finish(key, selection)
    return selection


def _generate(
    config, stages, out_dir, checkpoint: Path, prompts: Path, base_dir: Path, skipped
) -> dict[str, Path]:
    from lima.eval.formats import as_generations_file

    models = {"model": str(checkpoint)} | {b.name: b.model for b in config.baselines if b.model}
    files: dict[str, Path] = {}
    for baseline in config.baselines:
        if baseline.generations:
            path = resolve_path(baseline.generations, base_dir)
            if not path.exists():
                raise LimaError(f"baselines.{baseline.name}.generations: {path} not found")
            files[baseline.name] = path
    made = generate_stage(
        stages["generate"],
        out_dir,
        models,
        prompts,
        config.test_limit,
        skipped,
        fingerprints=[checkpoint / "lima_checkpoint.json"],
    )
    # a leaderboard model's answers (AlpacaEval, FastChat, Arena-Hard) become a lima generations file, on the
    # prompts the model answered (all of them, or the first test_limit)
    generations = {
        name: as_generations_file(path, out_dir / "baselines" / f"{name}.jsonl", made["model"])
        for name, path in files.items()
    }
    return made | generations


def generate_stage(
    cfg,
    run_dir: Path,
    models: dict[str, str],
    prompts: Path,
    limit: int | None,
    skipped: list[str],
    fingerprints: list[Path] = (),
) -> dict[str, Path]:
    from lima.eval.generate import run_generation

    stage = Stage(run_dir, "generate")
    key = stage_key(
        {"generate": cfg.model_dump(mode="json"), "models": models, "limit": limit}, [prompts, *fingerprints]
    )
    if stage.is_done(key):
        skipped.append("generate")
        announce("generate: unchanged, skipped")
        return {k: Path(v) for k, v in stage.outputs().items()}
    stage.begin(key)  # run_generation skips prompts already written, so a rerun continues
    outputs: dict[str, Path] = {}
    for name, spec in models.items():
        announce(f"generate with {name} ({spec}) …")
        outputs[name] = run_generation(
            cfg, stage.dir / f"{name}.jsonl", model=spec, prompts=prompts, limit=limit
        )
    stage.finish(key, {k: str(v) for k, v in outputs.items()})
    return outputs


def _judge(cfg, out_dir: Path, generations: dict[str, Path], skipped: list[str]) -> dict[str, dict[str, Any]]:
    from lima.eval.judge import run_judging

    summaries: dict[str, dict[str, Any]] = {}
    for name, path in generations.items():
        if name == "model":
            continue
        stage = Stage(out_dir / "judge", name)
        key = stage_key(cfg, [generations["model"], path])
        if stage.is_done(key):
            skipped.append(f"judge/{name}")
            summaries[name] = json.loads((stage.dir / "summary.json").read_text())
            continue
        stage.begin(key)  # the judge cache inside makes a continued run send nothing twice
        announce(f"judge model vs {name} …")
        summaries[name] = run_judging(cfg, generations["model"], path, stage.dir)
        stage.finish(key, {"summary": str(stage.dir / "summary.json")})
    return summaries


def grade_stage(
    cfg, run_dir: Path, generations: dict[str, Path], samples: int, skipped: list[str]
) -> dict[str, dict[str, Any]]:
    if cfg is None:
        return {}
    from lima.eval.grade import run_grading

    grades: dict[str, dict[str, Any]] = {}
    for name, path in generations.items():
        stage = Stage(run_dir / "grade", name)
        key = stage_key({"grade": cfg.model_dump(mode="json"), "samples": samples}, [path])
        if stage.is_done(key):
            skipped.append(f"grade/{name}")
            grades[name] = stage.outputs()
            continue
        stage.begin(key)
        announce(f"grade {name} …")
        grades[name] = run_grading(cfg, path, stage.dir, samples=samples)
        stage.finish(key, grades[name])
    return grades
