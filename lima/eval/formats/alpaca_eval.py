"""AlpacaEval (tatsu-lab/alpaca_eval) files, all JSON lists.

- the evaluation set / ``model_outputs.json``: ``instruction``, ``output``, ``generator``, ``dataset``;
  without ``output`` it is a prompt list;
- ``annotations.json``: ``instruction``, ``output_1`` (``generator_1``, the baseline), ``output_2``
  (``generator_2``, the model being evaluated), ``preference`` in [1, 2] (1: output_1 better, 2: output_2
  better, 1.5: draw; weighted annotators give values in between; null when the annotation failed).

AlpacaEval merges answers on the instruction text, so lima's prompt id is a hash of it
(``alpaca_eval-<sha1[:10]>``) and the instruction itself is kept verbatim as the prompt.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from lima.core.names import display_name
from lima.eval.formats.common import ImportResult, Row, generation, judgment, prompt_record, require, rest

NAME = "alpaca_eval"
# what `export_file` writes for each kind of lima file
EXPORTED = {"judgments": "annotations.json", "generations": "model_outputs.json", "prompts": "prompts"}


def prompt_id(instruction: str) -> str:
    return f"{NAME}-{hashlib.sha1(instruction.encode('utf-8')).hexdigest()[:10]}"


def is_switched_outputs(instruction: str, seed: int = 0) -> bool:
    """Whether AlpacaEval's pairwise annotator shows ``output_2`` first for this instruction.

    The rule of ``RandomSwitchTwoColumnsProcessor`` (switch column ``is_switched_outputs``, seeded on the
    ``instruction`` column and the annotator pool's seed, 0 by default):
    ``random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]``.
    """
    return random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]


def detect_kind(obj: dict[str, Any]) -> str | None:
    if "instruction" not in obj:
        return None
    if "output_1" in obj and "output_2" in obj:
        return "judgments"
    return "answers" if "output" in obj else "prompts"


def _instruction(row: Row, result: ImportResult) -> str | None:
    obj = require(row, "instruction")
    if not isinstance(obj["instruction"], str) or not obj["instruction"].strip():
        result.skip(row, "instruction is not a non-empty string")
        return None
    return obj["instruction"]


def import_prompts(rows: list[Row], result: ImportResult) -> None:
    for row in rows:
        instruction = _instruction(row, result)
        if instruction is not None:
            meta = rest(row.obj, ("instruction",))
            result.lines.append(prompt_record(prompt_id(instruction), NAME, [instruction], meta))


def import_answers(rows: list[Row], result: ImportResult, model: str) -> None:
    for position, row in enumerate(rows):
        instruction = _instruction(row, result)
        if instruction is None:
            continue
        output = row.obj.get("output")
        if not isinstance(output, str):
            result.skip(row, "output is missing or not a string")
            continue
        meta = rest(row.obj, ("instruction", "output", "generator"))
        # AlpacaEval's ``index`` when this is a leaderboard model's file (the evaluation set's order): judged as
        # the baseline, it becomes the judgment's, for AlpacaEval's LC win rate
        meta.setdefault("alpaca_eval_index", position)
        result.lines.append(
            generation(
                prompt_id(instruction), instruction, str(row.obj.get("generator") or model), output, meta
            )
        )


def preference_verdict(preference: float) -> str:
    """The discrete outcome from the evaluated model's (output_2's) side, as AlpacaEval counts n_wins:
    above 1.5 a win, exactly 1.5 a draw, below a loss."""
    return "A" if preference > 1.5 else "tie" if preference == 1.5 else "B"


def import_judgments(rows: list[Row], result: ImportResult) -> None:
    for position, row in enumerate(rows):
        instruction = _instruction(row, result)
        if instruction is None:
            continue
        obj = require(row, "output_1", "output_2", "preference")
        preference = obj["preference"]
        if preference is None:
            # a failed annotation: an error judgment (no verdict), as lima's own judge records one. AlpacaEval
            # leaves it out of the win rate but keeps it in its LC win rate's length scale and mean prediction.
            failed = _judgment(obj, instruction, position, None, None)
            failed["error"] = "null preference (failed annotation)"
            result.lines.append(failed)
            continue
        if isinstance(preference, bool) or not isinstance(preference, int | float):
            result.skip(row, "preference is not a number")
            continue
        preference = 1.5 if preference == 0 else float(preference)  # AlpacaEval: 0 is the old draw
        if not 1 <= preference <= 2:
            result.skip(row, "preference outside [1, 2]")
            continue
        result.lines.append(
            _judgment(obj, instruction, position, preference_verdict(preference), preference - 1)
        )


def _judgment(
    obj: dict[str, Any], instruction: str, position: int, verdict: str | None, preference: float | None
) -> dict[str, Any]:
    meta = rest(obj, ("instruction", "output_1", "output_2", "generator_1", "generator_2"))
    meta["is_switched_outputs"] = is_switched_outputs(instruction)
    # AlpacaEval's ``index`` (the row of annotations.json): what its LC win rate matches the difficulty on
    meta.setdefault("alpaca_eval_index", position)
    return judgment(
        prompt_id(instruction),
        instruction,
        str(obj.get("generator_2") or "output_2"),
        str(obj.get("generator_1") or "output_1"),
        str(obj["output_2"] or ""),
        str(obj["output_1"] or ""),
        verdict,
        preference=preference,
        meta=meta,
    )


def export_generations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``model_outputs.json`` rows: instruction, output, generator (and what the import kept, e.g. dataset)."""
    return [
        {
            **{k: v for k, v in (r.get("meta") or {}).items() if k != "alpaca_eval_index"},
            "instruction": r["prompt"],
            "output": r["output"],
            "generator": display_name(r) or "lima",
        }
        for r in records
    ]


def export_judgments(judgments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``annotations.json`` rows: output_1 the baseline (lima's B), output_2 the evaluated model (A)."""
    out = []
    for j in judgments:
        meta = {
            k: v
            for k, v in (j.get("meta") or {}).items()
            if k not in ("is_switched_outputs", "alpaca_eval_index")
        }
        if "preference" not in meta:
            pref = j.get("preference")
            meta["preference"] = (
                1 + pref
                if pref is not None
                else {"A": 2.0, "tie": 1.5, "B": 1.0, None: None}[j["verdict"]]  # None: a failed annotation
            )
        out.append(
            {
                "instruction": j["prompt"],
                "output_1": j.get("output_b"),
                "generator_1": j.get("model_b"),
                "output_2": j.get("output_a"),
                "generator_2": j.get("model_a"),
                **meta,
            }
        )
    return out
