"""Super-Natural Instructions task files (``tasks/taskNNN_*.json`` of allenai/natural-instructions).

A task file is one JSON object: ``Definition`` (a string, or a list of strings in older releases),
``Categories``, ``Input_language`` / ``Output_language``, ``Positive Examples`` (``input``, ``output``,
``explanation``) and ``Instances`` (``id``, ``input``, ``output``: a list of acceptable outputs).

LIMA takes 50 natural-language-generation tasks and one random instance of each: a task is a domain, the
reader yields ``instances_per_task`` seeded random instances of it, and the ``natinst`` quota picks the tasks.
The prompt is the task's definition (with ``positive_examples`` worked examples, if asked) and the instance's
input; the response is its first output.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import parse_json_document, stable_hash
from lima.core.record import Example
from lima.curation.config import NatInstFilters
from lima.curation.filters import language_reason, length_reason
from lima.curation.types import Drop, ShardCounts

SOURCE = "natinst"
REQUIRED = ("Definition", "Instances")


def load_task(path: Path) -> dict[str, Any]:
    """The task object; a file that is not one stops the run naming the file and the fix."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise LimaError(f"{path}: cannot read ({exc})") from None
    task = parse_json_document(path, raw, fix="; re-download the task")
    if not isinstance(task, dict):
        raise LimaError(
            f"{path}: expected a Natural Instructions task object, found a JSON {type(task).__name__}"
        )
    missing = [key for key in REQUIRED if key not in task]
    if missing:
        raise LimaError(f"{path}: task file lacks {', '.join(missing)}; expected a Natural Instructions task")
    if not isinstance(task["Instances"], list):
        raise LimaError(f"{path}: Instances: expected a list of {{input, output}} objects")
    return task


def _text(value: Any) -> str:
    """A field that is a string, or a list of strings (older task files)."""
    if isinstance(value, list):
        return "\n".join(v for v in value if isinstance(v, str)).strip()
    return value.strip() if isinstance(value, str) else ""


def _first_output(output: Any) -> str:
    outputs = output if isinstance(output, list) else [output]
    return next((o.strip() for o in outputs if isinstance(o, str) and o.strip()), "")


def _category_names(task: dict[str, Any]) -> list[str]:
    """``"Text Modification -> Paraphrasing"`` and ``"Paraphrasing"`` both name the category Paraphrasing."""
    return [str(c).split("->")[-1].strip().lower() for c in task.get("Categories") or []]


def task_reason(task: dict[str, Any], rules: NatInstFilters) -> str | None:
    """Why the whole task is left out (its category or language), or None."""
    if rules.categories is not None:
        wanted = {c.split("->")[-1].strip().lower() for c in rules.categories}
        if not wanted & set(_category_names(task)):
            return "category"
    if rules.languages is not None:
        allowed = set(rules.languages)
        languages = [*(task.get("Input_language") or []), *(task.get("Output_language") or [])]
        if not languages or not set(languages) <= allowed:
            return "language"
    return None


def build_prompt(task: dict[str, Any], instance_input: str, examples: int) -> str:
    parts = [_text(task["Definition"])]
    for example in (task.get("Positive Examples") or [])[:examples]:
        if isinstance(example, dict):
            shown = _first_output(example.get("output"))
            parts.append(f"Example input: {_text(example.get('input'))}\nExample output: {shown}")
    parts.append(instance_input)
    return "\n\n".join(p for p in parts if p)


def read_natinst(
    path: Path, rules: NatInstFilters, seed: int, counts: ShardCounts, language: str | None = None
) -> Iterator[Example | Drop]:
    task = load_task(path)
    name = path.stem
    record_id = f"{SOURCE}-{name}"

    def drop(reason: str, rid: str = record_id, **text: str) -> Drop:
        counts.rows_in += 1
        counts.drop(reason)
        return Drop(id=rid, source=SOURCE, domain=name, reason=reason, **text)

    reason = task_reason(task, rules)
    if reason is not None:
        yield drop(reason, detail=", ".join(task.get("Categories") or []))
        return
    order = list(range(len(task["Instances"])))
    random.Random(stable_hash([seed, SOURCE, name])).shuffle(order)
    taken = 0
    for index in order:  # seeded random instances, skipping unusable ones, until enough are taken
        if taken == rules.instances_per_task:
            return
        instance = task["Instances"][index]
        if not isinstance(instance, dict):
            continue
        instance_input, response = _text(instance.get("input")), _first_output(instance.get("output"))
        if not instance_input or not response:
            continue
        rid = f"{SOURCE}-{instance.get('id') or f'{name}-{index}'}"
        prompt = build_prompt(task, instance_input, rules.positive_examples)
        reason = length_reason(response, rules.min_chars, rules.max_chars) or language_reason(
            f"{prompt}\n{response}", language
        )
        if reason is not None:
            yield drop(reason, rid, prompt=prompt, response=response)
            continue
        counts.rows_in += 1
        counts.kept += 1
        taken += 1
        yield Example(
            id=rid,
            source=SOURCE,
            domain=name,
            messages=[{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            meta={
                "task": name,
                "categories": list(task.get("Categories") or []),
                "group": SOURCE,
                "license": ", ".join(task.get("Instance License") or []) or "see the task's source",
                "url": f"https://github.com/allenai/natural-instructions/blob/master/tasks/{path.name}",
            },
        )
    if taken == 0:
        yield drop("no_instances")
