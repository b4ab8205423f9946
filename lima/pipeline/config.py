"""Experiment and ablation configs: they name (or inline) one config per stage, plus baselines and prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from lima.core.config import (
    Config,
    ConfigError,
    deep_merge,
    read_yaml,
    schema_for_kind,
    validate_config,
)
from lima.core.io import resolve_path as core_resolve_path


class StageRef(Config):
    """A stage config: a YAML file under configs/<kind>/, with ``overrides`` merged over it.

    Without ``config`` the ``overrides`` mapping is the whole (inline) stage config.
    """

    config: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)

    def load_data(self, base_dir: Path) -> tuple[dict[str, Any], str]:
        data: dict[str, Any] = {}
        source = "<inline>"
        if self.config:
            path = resolve_path(self.config, base_dir)
            data = read_yaml(path)
            source = str(path)
        # Dotted keys ("selection.quotas: {...}") address nested fields, as on the command line.
        for key, value in self.overrides.items():
            nested: Any = value
            for part in reversed(str(key).split(".")):
                nested = {part: nested}
            data = deep_merge(data, nested)
        return data, source


def resolve_path(path: str | Path, base_dir: Path) -> Path:
    """Paths in configs: relative to the working directory, else to the config's folder or a parent of it."""
    return core_resolve_path(path, (base_dir, *base_dir.parents))


class Baseline(Config):
    """A model to compare against: a model spec generated with the experiment's generate config, or a
    file of generations made elsewhere (e.g. a hosted model's answers)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    model: str | None = None
    generations: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Baseline:
        if (self.model is None) == (self.generations is None):
            raise ValueError("give exactly one of model or generations")
        return self


class SelectConfig(Config):
    """Which epoch checkpoint to keep. LIMA chose by hand between epochs 5 and 10; we automate it."""

    strategy: Literal["judge", "dev_loss", "last"] = "judge"
    min_epoch: int = Field(1, ge=1)
    max_epoch: int | None = Field(None, ge=1)
    dev_prompts: int = Field(50, ge=1, description="how many dev prompts to generate on (LIMA: 50)")


class CalibrateStage(Config):
    """Calibrate the experiment's judge on human-labelled pairs before it judges anything, so that every win
    rate in the report stands beside the judge's agreement with humans (``lima calibrate``)."""

    labels: str = Field(
        "data/judge_pairs.jsonl", description="labelled pair file (the project's own by default)"
    )
    format: Literal["llmbar", "pandalm", "autoj", "mtbench", "lima"] = "lima"
    limit: int | None = Field(None, ge=1, description="only the first N pairs (a cheaper, wider CI)")


class ExperimentConfig(Config):
    name: str = "experiment"
    seed: int = 0
    curate: StageRef | None = None
    data: str | None = Field(None, description="an existing train.jsonl instead of a curate stage")
    dev: str | None = Field(None, description="an existing dev.jsonl (with data:)")
    train: StageRef
    generate: StageRef
    judge: StageRef
    grade: StageRef | None = None
    calibrate: CalibrateStage | None = Field(None, description="calibrate the judge first (recommended)")
    select: SelectConfig = Field(default_factory=SelectConfig)
    test_prompts: str = Field(description="LIMA test JSONL, record JSONL, or a text file of prompts")
    test_limit: int | None = Field(None, ge=1)
    baselines: list[Baseline] = Field(default_factory=list)
    grade_samples: int | None = Field(
        None, ge=1, description="grades per generated response (default: the grade config's samples)"
    )
    report_samples: int = Field(5, ge=0, description="generations shown side by side in the report")

    def check_stages(self, config_path: Path) -> None:
        """Validate every stage config this experiment names (ConfigError listing all problems)."""
        refs = {
            "curate": self.curate,
            "train": self.train,
            "generate": self.generate,
            "judge": self.judge,
            "grade": self.grade,
        }
        load_stages(refs, Path(config_path).resolve().parent)

    @model_validator(mode="after")
    def _data_source(self) -> ExperimentConfig:
        if (self.curate is None) == (self.data is None):
            raise ValueError(
                "give exactly one of curate (a curation stage) or data (an existing train.jsonl)"
            )
        return self


class Arm(Config):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    curate: StageRef
    label: str | None = None
    size: int | None = Field(None, ge=1, description="x value on the quantity plot (defaults to n trained)")


class AblationConfig(Config):
    """LIMA-style ablation: each arm is curated, trained with shared settings, generated on the same prompts
    and graded with the Likert judge."""

    name: str
    kind: Literal["diversity", "quality", "quantity", "custom"] = "custom"
    seed: int = 0
    arms: list[Arm] = Field(min_length=1)
    train: StageRef
    generate: StageRef
    grade: StageRef
    prompts: str
    prompt_limit: int | None = Field(None, ge=1)
    samples: int | None = Field(
        None,
        ge=1,
        description="sampled responses per prompt, each graded grade.samples times "
        "(default: the generate config's decoding.samples; LIMA: 5 responses, graded once)",
    )
    devices: list[str] = Field(
        default_factory=list, description="CUDA devices to spread arms over ([] = in sequence)"
    )


STAGE_KINDS = {
    "curate": "curate",
    "train": "train",
    "generate": "generate",
    "judge": "judge",
    "grade": "grade",
}


def load_stage(ref: StageRef, kind: str, base_dir: Path, extra: dict[str, Any] | None = None):
    data, source = ref.load_data(base_dir)
    if extra:
        data = deep_merge(data, extra)
    return validate_config(data, schema_for_kind(kind), f"{source} [{kind}]")


def load_stages(refs: dict[str, StageRef | None], base_dir: Path) -> dict[str, Any]:
    """Validate every referenced stage config; raise one ConfigError listing the problems of all of them."""
    loaded: dict[str, Any] = {}
    problems: list[str] = []
    for name, ref in refs.items():
        if ref is None:
            continue
        try:
            loaded[name] = load_stage(ref, STAGE_KINDS[name.split(":")[0]], base_dir)
        except ConfigError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return loaded
