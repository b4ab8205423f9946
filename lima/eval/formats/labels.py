"""Human-labelled pairwise sets, read into lima's pair records (``meta["gold"]``) for ``lima calibrate``.

Label formats (gold is always A = first response better, B = second, tie):

- ``llmbar``  JSON list (or JSONL) of ``input, output_1, output_2, label`` (1 | 2; no ties).
- ``pandalm`` JSON list of ``instruction, input, response1, response2, annotator1..3`` (0 tie, 1, 2);
  gold is the majority of the three annotators; when all three differ (one each) gold is a tie.
- ``autoj``   JSONL of ``scenario, label, prompt, "response 1", "response 2"`` (0 first, 1 second, 2 tie);
  ``scenario`` is the category.
- ``mtbench`` JSON list or JSONL of MT-Bench human judgments: ``question_id, model_a, model_b, winner``
  (model_a | model_b | tie | "tie (bothbad)"), ``conversation_a/_b`` (role/content turns) and ``turn``;
  only first-turn judgments are used (the number skipped is reported); the category is ``model_a vs model_b``.
- ``lima``    the project's own JSONL (``data/judge_pairs.jsonl``): ``prompt, answer_1, answer_2, label``
  (1 | 2 | 0 = tie), optional ``id`` and ``category``.

Layer: adapters (beside the ecosystem's file formats; no engine).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.formats.common import load_rows
from lima.eval.records import PairItem

LABEL_FORMATS = ("llmbar", "pandalm", "autoj", "mtbench", "lima")
_REQUIRED = {
    "llmbar": ("input", "output_1", "output_2", "label"),
    "pandalm": ("instruction", "response1", "response2", "annotator1", "annotator2", "annotator3"),
    "autoj": ("prompt", "response 1", "response 2", "label"),
    "mtbench": ("question_id", "model_a", "model_b", "winner", "conversation_a", "conversation_b"),
    "lima": ("prompt", "answer_1", "answer_2", "label"),
}

_VALUES = {
    "llmbar": "label 1 or 2",
    "pandalm": "annotator1..3 each 0 (tie), 1 or 2",
    "autoj": "label 0, 1 or 2 (tie)",
    "mtbench": "winner model_a, model_b or tie…, and user/assistant turns in both conversations",
    "lima": "label 1, 2 or 0 (tie), and prompt/answer_1/answer_2 as strings",
}


def _guess(row: Any) -> list[str]:
    return [f for f, need in _REQUIRED.items() if isinstance(row, dict) and all(k in row for k in need)]


def _majority(votes: list[int]) -> str:
    label, count = Counter(votes).most_common(1)[0]
    return "tie" if count == 1 or label == 0 else ("A" if label == 1 else "B")


def _first_turn(conversation: Any) -> tuple[str, str] | None:
    if not isinstance(conversation, list):
        return None
    user = next(
        (t.get("content") for t in conversation if isinstance(t, dict) and t.get("role") == "user"), None
    )
    answer = next(
        (t.get("content") for t in conversation if isinstance(t, dict) and t.get("role") == "assistant"), None
    )
    return (user, answer) if isinstance(user, str) and isinstance(answer, str) else None


def read_labelled_pairs(path: str | os.PathLike, fmt: str) -> tuple[list[PairItem], int]:
    """Items with ``meta["gold"]`` (A/B/tie) and ``meta["category"]``; also how many rows were skipped."""
    path = Path(path)
    if fmt not in LABEL_FORMATS:
        raise LimaError(f"--format {fmt!r}: expected one of {', '.join(LABEL_FORMATS)}")
    if not path.is_file():
        raise LimaError(f"{path}: labels file not found")
    rows = [row.obj for row in load_rows(path)]
    items: list[PairItem] = []
    skipped = 0
    for index, row in enumerate(rows):
        missing = [k for k in _REQUIRED[fmt] if not isinstance(row, dict) or k not in row]
        if missing:
            fits = [f for f in _guess(row) if f != fmt]
            hint = f"; it looks like --format {fits[0]}" if fits else ""
            raise LimaError(f"{path}: row {index + 1}: missing {', '.join(missing)} for --format {fmt}{hint}")
        try:
            if fmt == "llmbar":
                gold = {1: "A", 2: "B"}[int(row["label"])]
                items.append(
                    PairItem(str(index), row["input"], row["output_1"], row["output_2"], {"gold": gold})
                )
            elif fmt == "pandalm":
                prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
                votes = [int(row[f"annotator{i}"]) for i in (1, 2, 3)]
                if any(v not in (0, 1, 2) for v in votes):
                    raise KeyError(votes)
                items.append(
                    PairItem(
                        str(row.get("idx", index)),
                        prompt,
                        row["response1"],
                        row["response2"],
                        {"gold": _majority(votes)},
                    )
                )
            elif fmt == "autoj":
                gold = {0: "A", 1: "B", 2: "tie"}[int(row["label"])]
                meta = {"gold": gold, "category": row.get("scenario")}
                items.append(
                    PairItem(
                        str(row.get("id", index)), row["prompt"], row["response 1"], row["response 2"], meta
                    )
                )
            elif fmt == "mtbench":
                if int(row.get("turn", 1)) != 1:
                    skipped += 1
                    continue
                first_a, first_b = _first_turn(row["conversation_a"]), _first_turn(row["conversation_b"])
                if first_a is None or first_b is None:
                    raise KeyError("conversation")
                winner = str(row["winner"])
                gold = {"model_a": "A", "model_b": "B"}.get(
                    winner, "tie" if winner.startswith("tie") else None
                )
                if gold is None:
                    raise KeyError(winner)
                key = f"{row['question_id']}-{row['model_a']}-{row['model_b']}-{row.get('judge', index)}-{index}"
                meta = {"gold": gold, "category": f"{row['model_a']} vs {row['model_b']}"}
                items.append(PairItem(key, first_a[0], first_a[1], first_b[1], meta))
            elif fmt == "lima":
                gold = {1: "A", 2: "B", 0: "tie"}[int(row["label"])]
                if not all(isinstance(row[k], str) for k in ("prompt", "answer_1", "answer_2")):
                    raise TypeError("texts")
                meta = {"gold": gold, "category": row.get("category")}
                items.append(
                    PairItem(str(row.get("id", index)), row["prompt"], row["answer_1"], row["answer_2"], meta)
                )
        except (KeyError, ValueError, TypeError):
            raise LimaError(
                f"{path}: row {index + 1}: label/annotation value is not valid for --format {fmt}"
                f" (expected {_VALUES[fmt]})"
            ) from None
    if not items:
        raise LimaError(f"{path}: no usable labelled pairs for --format {fmt}")
    return items, skipped
