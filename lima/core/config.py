"""YAML configs with typed schemas and ``key=value`` overrides.

Validation runs before anything heavy loads and reports every problem at once — unknown keys (with a
'did you mean'), wrong types and missing required keys — as one :class:`ConfigError` (exit code 2).
"""

from __future__ import annotations

import importlib
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from lima.core.errors import ConfigError
from lima.core.suggest import did_you_mean, unknown_name

T = TypeVar("T", bound=BaseModel)


class Config(BaseModel):
    """Base of every config schema: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


# Which schema validates the configs in ``configs/<kind>/`` (and ``lima validate --kind``).
# Stages add themselves here as they land; values are "module:Class" so nothing heavy is imported.
SCHEMAS: dict[str, str] = {
    "endpoints": "lima.core.endpoint:EndpointConfig",
    "curate": "lima.curation.config:CurateConfig",
    "train": "lima.finetune.config:TrainConfig",
    "generate": "lima.eval.config:GenerateConfig",
    "judge": "lima.eval.config:JudgeConfig",
    "grade": "lima.eval.config:GradeConfig",
    "experiments": "lima.pipeline.config:ExperimentConfig",
    "ablations": "lima.pipeline.config:AblationConfig",
}


def schema_for_kind(kind: str) -> type[Config]:
    if kind not in SCHEMAS:
        raise ConfigError(unknown_name("config kind", kind, SCHEMAS))
    module_name, _, class_name = SCHEMAS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def kind_of_path(path: str | os.PathLike) -> str | None:
    """The config kind implied by a path such as ``configs/train/demo.yaml`` (its folder name)."""
    parent = Path(path).resolve().parent.name
    return parent if parent in SCHEMAS else None


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ``["train.lr=1e-4", "epochs=3"]`` into a nested dict; values are parsed as YAML scalars."""
    nested: dict[str, Any] = {}
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"override {item!r}: expected key=value (dotted keys for nested fields)")
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"override {item!r}: {part} is set to a value and used as a section")
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ConfigError("invalid overrides:\n" + "\n".join(f"  - {p}" for p in problems))
    return nested


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as ``Foo | None`` or ``list[Foo]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, dict, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _fields_at(schema: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at ``loc`` (a pydantic error location), walking nested models."""
    model: type[BaseModel] | None = schema
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int) or part not in model.model_fields:
            continue
        model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
}


def _describe(error: dict[str, Any], schema: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    # Drop pydantic's union/tag path components (e.g. 'function-after[...]') from the shown key.
    shown = ".".join(
        str(p) for p in loc if not (isinstance(p, str) and ("[" in p or ("-" in p and "(" in p)))
    )
    kind = error["type"]
    if kind == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), _fields_at(schema, loc[:-1]))
        return f"{shown}: unknown key{hint}"
    if kind == "missing":
        return f"{shown}: required key is missing"
    base = kind.split("_")[0]
    if base in _TYPE_WORDS and ("type" in kind or "parsing" in kind):
        return f"{shown}: wrong type: expected {_TYPE_WORDS[base]}, got {error.get('input')!r}"
    return f"{shown}: {error['msg']} (got {error.get('input')!r})"


def validate_config(data: dict[str, Any], schema: type[T], source: str = "<config>") -> T:
    """Validate a dict against ``schema``; raise one ConfigError listing every problem."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e, schema) for e in exc.errors()]
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{source}: {len(problems)} {noun}:\n{lines}") from None


def load_config(path: str | os.PathLike | None, schema: type[T], overrides: list[str] | None = None) -> T:
    """Read YAML ``path`` (or start empty), apply ``key=value`` overrides, validate against ``schema``."""
    data = read_yaml(path) if path is not None else {}
    if overrides:
        data = deep_merge(data, parse_overrides(overrides))
    source = str(path) if path is not None else "<overrides>"
    if overrides and path is not None:
        source += " (with overrides)"
    return validate_config(data, schema, source)


def config_to_dict(config: BaseModel) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (for manifests and content hashes)."""
    return config.model_dump(mode="json")
