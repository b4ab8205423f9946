"""The evaluation ecosystem's files: AlpacaEval, MT-Bench (FastChat llm_judge), Arena-Hard-Auto, Auto-J.

``import_file`` detects what a file is (prompts, a model's answers, judgments; for Auto-J labels or
predictions) and converts it into lima's own lines: example records for prompts, ``lima generate`` records
for answers, ``lima judge`` judgments, ``lima agreement`` labels/predictions. ``export_file`` writes lima
prompts or generations in a format's own shape so that its tools can judge them. ``read_generations`` and
``read_prompts`` in ``lima.eval.inputs`` call ``foreign_generations`` / ``foreign_prompts`` so that these files
work directly as baselines and test prompts.

Layer: adapters. They convert to and from lima's records (:mod:`lima.eval.records`) and never import an engine.
``ECOSYSTEM_FORMATS`` (was ``FORMATS``) names the ecosystem's file formats; ``lima.eval.formats.labels.LABEL_FORMATS``
the human-label sets ``lima calibrate`` reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.formats import alpaca_eval, arena_hard, autoj, mt_bench
from lima.eval.formats.common import ImportResult, first_object, load_rows, write_json_list, write_jsonl

ECOSYSTEM_FORMATS = {
    "alpaca_eval": alpaca_eval,
    "mt_bench": mt_bench,
    "arena_hard": arena_hard,
    "autoj": autoj,
}
FORMATS = ECOSYSTEM_FORMATS  # the old name, kept importable
EXPORT_FORMATS = ("alpaca_eval", "mt_bench", "arena_hard")


def _module(fmt: str):
    if fmt not in FORMATS:
        raise LimaError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def detect(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(format, kind)`` of a file in one of the ecosystem formats, or None (lima's own files give None)."""
    obj = first_object(path)
    if obj is None:
        return None
    for name, module in FORMATS.items():
        kind = module.detect_kind(obj)
        if kind is not None:
            return name, kind
    return None


def import_file(
    fmt: str, path: str | os.PathLike, kind: str | None = None, questions: str | os.PathLike | None = None
) -> ImportResult:
    module, path = _module(fmt), Path(path)
    rows = load_rows(path)
    if not rows:
        raise LimaError(f"{path}: no rows")
    if kind is None:
        first = rows[0].obj if isinstance(rows[0].obj, dict) else {}
        kind = module.detect_kind(first)
        if kind is None:
            found = detect(path)
            hint = f"; it looks like {found[0]} {found[1]}" if found else ""
            raise LimaError(f"{path}: not a {fmt} file of a kind lima reads (keys: {', '.join(first)}){hint}")
    result = ImportResult(fmt, kind)
    questions_path = Path(questions) if questions else None
    handlers = {
        ("alpaca_eval", "prompts"): lambda: alpaca_eval.import_prompts(rows, result),
        ("alpaca_eval", "answers"): lambda: alpaca_eval.import_answers(rows, result, path.parent.name),
        ("alpaca_eval", "judgments"): lambda: alpaca_eval.import_judgments(rows, result),
        ("mt_bench", "prompts"): lambda: mt_bench.import_prompts(rows, result),
        ("mt_bench", "answers"): lambda: mt_bench.import_answers(rows, result, path, questions_path),
        ("mt_bench", "judgments"): lambda: mt_bench.import_judgments(rows, result, path, questions_path),
        ("arena_hard", "prompts"): lambda: arena_hard.import_prompts(rows, result),
        ("arena_hard", "answers"): lambda: arena_hard.import_answers(rows, result, path, questions_path),
        ("arena_hard", "judgments"): lambda: arena_hard.import_judgments(rows, result, path),
        ("autoj", "labels"): lambda: autoj.import_labels(rows, result),
        ("autoj", "predictions"): lambda: autoj.import_predictions(rows, result),
    }
    if (fmt, kind) not in handlers:
        kinds = sorted(k for f, k in handlers if f == fmt)
        raise LimaError(f"--kind {kind!r}: {fmt} files are one of {', '.join(kinds)}")
    handlers[(fmt, kind)]()
    return result


def write_import(result: ImportResult, out: str | os.PathLike) -> int:
    return write_jsonl(out, result.lines)


def _lima_kind(records: list[dict[str, Any]], path: Path) -> str:
    first = records[0] if records else {}
    if "prompt_id" in first and "verdict" in first:
        return "judgments"
    if "prompt_id" in first and "output" in first:
        return "generations"
    if "id" in first and "messages" in first:
        return "prompts"
    raise LimaError(
        f"{path}: expected lima generations (prompt_id, prompt, output) or prompt records (id, messages)"
    )


def export_file(fmt: str, path: str | os.PathLike, out: str | os.PathLike) -> tuple[str, int]:
    """Write lima generations (or prompt records, or judgments) as ``fmt``'s own file; returns (what, count)."""
    if fmt not in EXPORT_FORMATS:
        raise LimaError(f"format {fmt!r}: export writes one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    records = [row.obj for row in load_rows(path)]
    kind = _lima_kind(records, path)
    if kind == "judgments":
        rows = FORMATS[fmt].export_judgments(records)
    elif kind == "generations":
        from lima.eval.records import read_lima_generations

        records = read_lima_generations(path, allow_empty=True)
        rows = FORMATS[fmt].export_generations(records)
    elif fmt == "alpaca_eval":
        rows = [{**(r.get("meta") or {}), "instruction": r["messages"][0]["content"]} for r in records]
    else:
        rows = FORMATS[fmt].export_prompts(records)
    what = FORMATS[fmt].EXPORTED[kind]
    count = write_json_list(out, rows) if fmt == "alpaca_eval" else write_jsonl(out, rows)
    return what, count


def foreign_generations(path: Path) -> list[dict[str, Any]] | None:
    """A leaderboard model's answers (AlpacaEval ``model_outputs.json``, FastChat or Arena-Hard
    ``model_answer/*.jsonl``) as lima generation records; None when the file is not one of them."""
    found = detect(path)
    if found is None or found[1] != "answers":
        return None
    result = import_file(found[0], path, "answers")
    if result.skipped:
        where, reason = result.skipped[0]
        raise LimaError(f"{where}: {reason} ({len(result.skipped)} unusable row(s); see `lima import`)")
    return result.lines


def foreign_prompt_format(path: Path) -> str | None:
    """``alpaca_eval`` / ``mt_bench`` / ``arena_hard`` when ``path`` is that benchmark's prompt file (an
    AlpacaEval evaluation set with reference outputs counts as prompts here)."""
    found = detect(path)
    if found is None or found[0] == "autoj":
        return None
    if found[0] == "alpaca_eval" and found[1] in ("prompts", "answers"):
        return "alpaca_eval"
    return found[0] if found[1] == "prompts" else None


def foreign_prompts(path: Path, fmt: str) -> list[tuple[str, str]]:
    """``(id, first user turn)`` per prompt. MT-Bench's later turns are generated by
    ``mt_bench.generate_two_turns``, which ``lima generate`` calls for a question file."""
    result = import_file(fmt, path, "prompts" if fmt == "alpaca_eval" else None)
    if result.skipped:
        where, reason = result.skipped[0]
        raise LimaError(f"{where}: {reason}")
    return [(line["id"], line["messages"][0]["content"]) for line in result.lines]


def as_generations_file(path: Path, dest: Path, answered: Path | None = None) -> Path:
    """``path`` itself when it is a lima generations file, else its answers converted into ``dest`` — only those
    to prompts in the generations file ``answered`` when given (a leaderboard file covers the whole benchmark)."""
    records = foreign_generations(Path(path))
    if records is None:
        return Path(path)
    if answered is not None:
        from lima.eval.records import read_lima_generations

        answered_records = foreign_generations(Path(answered)) or read_lima_generations(
            answered, allow_empty=True
        )
        ids = {r["prompt_id"] for r in answered_records}
        records = [r for r in records if r["prompt_id"] in ids]
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(dest, records)
    return dest
