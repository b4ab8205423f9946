"""MT-Bench files of FastChat's ``llm_judge`` (lm-sys/FastChat, ``fastchat/llm_judge/data/mt_bench/``), JSONL.

- ``question.jsonl``: ``question_id``, ``category``, ``turns`` (two user turns), optional ``reference``;
- ``model_answer/<model>.jsonl``: ``question_id``, ``answer_id``, ``model_id``,
  ``choices: [{index, turns: [answer 1, answer 2]}]``, ``tstamp`` (no question text: it is taken from the
  ``question.jsonl`` beside the ``model_answer`` folder, or ``--questions``);
- ``model_judgment/<judge>_pair.jsonl``: ``question_id``, ``model_1``, ``model_2``, ``g1_winner``,
  ``g2_winner`` (``model_1`` | ``model_2`` | ``tie`` | ``error``; game 2 showed ``model_2`` first and its
  winner is already mapped back to model names), ``g1_judgment``/``g2_judgment`` (the judge's texts),
  ``judge: [model, prompt name]``, ``turn``.

lima ids: turn 1 of question 81 is ``81``, turn 2 is ``81:turn2`` (its generation continues the model's own
turn-1 answer, as FastChat's ``gen_model_answer`` does: that plan, and the pair-v2 judge prompt, are MT-Bench's
protocol, :mod:`lima.eval.protocols.mt_bench`).

Layer: adapters (files to and from lima's records; no engine).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.core.io import stable_hash
from lima.core.names import display_name
from lima.eval.formats.common import (
    ImportResult,
    Row,
    generation,
    judgment,
    load_rows,
    prompt_record,
    require,
    rest,
)
from lima.eval.records import split_turn_id, turn_id

NAME = "mt_bench"
# what `export_file` writes for each kind of lima file
EXPORTED = {
    "judgments": "FastChat model_judgment _pair",
    "generations": "FastChat model_answer",
    "prompts": "prompts",
}
WINNERS = ("model_1", "model_2", "tie")


def _source_qid(qid: str) -> int | str:
    return int(qid) if qid.isdigit() else qid


def detect_kind(obj: dict[str, Any]) -> str | None:
    if "g1_winner" in obj and "model_1" in obj:
        return "judgments"
    if (
        "question_id" in obj
        and isinstance(obj.get("turns"), list)
        and all(isinstance(t, str) for t in obj["turns"])
    ):
        return "prompts"
    choices = obj.get("choices")
    if "question_id" in obj and isinstance(choices, list) and choices and isinstance(choices[0], dict):
        turns = choices[0].get("turns")
        if isinstance(turns, list) and all(isinstance(t, str) for t in turns):
            return "answers"
    return None


def read_questions(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{question_id: {"turns": [...], "meta": {...}}}`` from a ``question.jsonl``."""
    questions: dict[str, dict[str, Any]] = {}
    for row in load_rows(path):
        obj = require(row, "question_id", "turns")
        turns = obj["turns"]
        if not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise LimaError(f"{row.where}: turns: expected a non-empty list of non-empty strings")
        qid = str(obj["question_id"])
        if qid in questions:
            raise LimaError(f"{row.where}: duplicate question_id {qid}")
        questions[qid] = {"turns": turns, "meta": rest(obj, ("question_id", "turns"))}
    if not questions:
        raise LimaError(f"{path}: no questions")
    return questions


def read_references(path: str | os.PathLike) -> dict[str, list[str]]:
    """``{question_id: [reference answer per turn]}`` from a FastChat ``reference_answer/*.jsonl`` (its
    ``choices[0].turns``, which FastChat's reference-guided prompts show)."""
    references: dict[str, list[str]] = {}
    for row in load_rows(path):
        obj = require(row, "question_id", "choices")
        choices = obj["choices"]
        turns = choices[0].get("turns") if isinstance(choices, list) and choices else None
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise LimaError(f"{row.where}: choices[0].turns: expected a list of reference answers (strings)")
        references[str(obj["question_id"])] = turns
    return references


def find_questions(path: Path, explicit: Path | None) -> dict[str, dict[str, Any]] | None:
    """The questions for an answer or judgment file: ``--questions``, else ``question.jsonl`` one folder up
    (FastChat's ``data/mt_bench/{question.jsonl, model_answer/, model_judgment/}`` layout)."""
    candidate = explicit or path.resolve().parent.parent / "question.jsonl"
    if candidate.is_file():
        return read_questions(candidate)
    if explicit is not None:
        raise LimaError(f"--questions {explicit}: file not found")
    return None


def import_prompts(rows: list[Row], result: ImportResult) -> None:
    for row in rows:
        obj = require(row, "question_id", "turns")
        turns = obj["turns"]
        if not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            result.skip(row, "turns is not a list of non-empty strings")
            continue
        meta = rest(obj, ("question_id", "turns"))
        result.lines.append(prompt_record(str(obj["question_id"]), NAME, turns, meta))


def import_answers(rows: list[Row], result: ImportResult, path: Path, questions_path: Path | None) -> None:
    questions = find_questions(path, questions_path)
    if questions is None:
        raise LimaError(
            f"{path}: FastChat answers carry no question text; pass --questions question.jsonl "
            "(or keep the file in FastChat's layout, data/mt_bench/model_answer/, beside question.jsonl)"
        )
    for row in rows:
        obj = require(row, "question_id", "choices")
        qid = str(obj["question_id"])
        if qid not in questions:
            result.skip(row, "question_id not in the question file")
            continue
        choices = obj["choices"]
        answers = choices[0].get("turns") if isinstance(choices, list) and choices else None
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            result.skip(row, "choices[0].turns is not a list of strings")
            continue
        turns = questions[qid]["turns"]
        model = str(obj.get("model_id") or path.stem)
        meta = rest(obj, ("question_id", "choices", "model_id"))
        history: list[dict[str, str]] = []
        for turn, (question, answer) in enumerate(zip(turns, answers, strict=False), 1):
            result.lines.append(
                generation(turn_id(qid, turn), question, model, answer, meta if turn == 1 else None, history)
            )
            history = [
                *history,
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]


def fastchat_verdict(g1_winner: str, g2_winner: str) -> str:
    """FastChat ``show_result.py``: a tie in game 1, or games that disagree, count as a tie."""
    if g1_winner == "tie" or g1_winner != g2_winner:
        return "tie"
    return "A" if g1_winner == "model_1" else "B"


def _game(order: str, winner: str, text: Any, model_order: tuple[str, str]) -> dict[str, Any]:
    verdict = {"model_1": "A", "model_2": "B", "tie": "tie"}[winner]
    first = model_order[0]  # the model shown as "Assistant A" in this game
    positional = "tie" if winner == "tie" else ("A" if winner == first else "B")
    tag = {"A": "[[A]]", "B": "[[B]]", "tie": "[[C]]"}[positional]
    return {
        "order": order,
        "positional": positional,
        "level": tag,
        "verdict": verdict,
        "raw": text if isinstance(text, str) else None,
    }


def import_judgments(rows: list[Row], result: ImportResult, path: Path, questions_path: Path | None) -> None:
    from lima.eval.parsers import parse_fastchat_pair, parse_last_tag

    questions = find_questions(path, questions_path) or {}
    reparse: dict[str, Any] = {
        "games": 0,
        "fastchat_rule_agrees": 0,
        "last_tag_agrees": 0,
        "last_tag_differs": 0,
        "last_tag_differs_at": [],
    }
    for row in rows:
        obj = require(row, "question_id", "model_1", "model_2", "g1_winner", "g2_winner")
        g1, g2 = obj["g1_winner"], obj["g2_winner"]
        if g1 == "error" or g2 == "error":
            result.skip(row, "FastChat error judgment (g1/g2_winner 'error': $ERROR$ or no verdict tag)")
            continue
        if g1 not in WINNERS or g2 not in WINNERS:
            result.skip(row, "g1_winner/g2_winner not one of model_1, model_2, tie, error")
            continue
        qid, turn = str(obj["question_id"]), int(obj.get("turn", 1))
        games = [
            _game("AB", g1, obj.get("g1_judgment"), ("model_1", "model_2")),
            _game("BA", g2, obj.get("g2_judgment"), ("model_2", "model_1")),
        ]
        for game in games:
            if game["raw"] is None:
                continue
            reparse["games"] += 1
            stored = game["positional"]
            precedence, last = parse_fastchat_pair(game["raw"]), parse_last_tag(game["raw"])
            reparse["fastchat_rule_agrees"] += precedence is not None and precedence.verdict == stored
            if last is not None and last.verdict == stored:
                reparse["last_tag_agrees"] += 1
            else:
                reparse["last_tag_differs"] += 1
                if len(reparse["last_tag_differs_at"]) < 10:
                    reparse["last_tag_differs_at"].append(
                        f"{row.where} game {1 if game['order'] == 'AB' else 2}"
                    )
        question = questions.get(qid, {}).get("turns", [])
        prompt = question[turn - 1] if len(question) >= turn else ""
        meta = rest(
            obj, ("question_id", "model_1", "model_2", "g1_winner", "g2_winner", "g1_judgment", "g2_judgment")
        )
        result.lines.append(
            judgment(
                turn_id(qid, turn),
                prompt,
                str(obj["model_1"]),
                str(obj["model_2"]),
                "",
                "",
                fastchat_verdict(g1, g2),
                orders=games,
                meta=meta,
            )
        )
    if reparse["games"]:
        reparse["why_last_tag_differs"] = (
            "FastChat picks the verdict by tag precedence ([[A]] anywhere, else [[B]], else [[C]]), "
            "not the last tag as lima's last_tag parser (once called mtbench) does; judges that quote the "
            "format or change their "
            "mind mid-text differ"
        )
        result.notes["reparse"] = reparse


def export_judgments(judgments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``model_judgment/<judge>_pair.jsonl`` rows: game 1 showed model_1 first, game 2 model_2."""
    winner = {"A": "model_1", "B": "model_2", "tie": "tie", None: "error"}
    out = []
    for j in judgments:
        qid, turn = split_turn_id(str(j["prompt_id"]))
        by_order = {o.get("order"): o for o in j.get("orders") or []}
        g1, g2 = by_order.get("AB", {}), by_order.get("BA", {})
        meta = dict(j.get("meta") or {})
        meta.setdefault("turn", turn)
        out.append(
            {
                "question_id": _source_qid(qid),
                "model_1": j.get("model_a"),
                "model_2": j.get("model_b"),
                "g1_winner": winner[g1.get("verdict")],
                "g2_winner": winner[g2.get("verdict")],
                "g1_judgment": g1.get("raw"),
                "g2_judgment": g2.get("raw"),
                **meta,
            }
        )
    return out


def export_prompts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        meta = dict(r.get("meta") or {})
        turns = meta.pop("turns", None) or [m["content"] for m in r["messages"] if m["role"] == "user"]
        out.append({"question_id": _source_qid(str(r["id"])), **meta, "turns": turns})
    return out


def export_generations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastChat ``model_answer/<model>.jsonl`` rows, one per question, turns in order."""
    by_question: dict[str, dict[int, dict[str, Any]]] = {}
    for r in records:
        qid, turn = split_turn_id(str(r["prompt_id"]))
        by_question.setdefault(qid, {})[turn] = r
    out = []
    for qid, turns in by_question.items():
        first = turns[min(turns)]
        meta = dict(first.get("meta") or {})
        model = display_name(first) or "lima"
        answer_id = (
            meta.pop("answer_id", None) or stable_hash([qid, model, [turns[t]["output"] for t in turns]])[:22]
        )
        out.append(
            {
                "question_id": _source_qid(qid),
                "answer_id": answer_id,
                "model_id": model,
                "choices": [{"index": 0, "turns": [turns[t]["output"] for t in sorted(turns)]}],
                "tstamp": meta.pop("tstamp", None) or time.time(),
                **meta,
            }
        )
    return out


def is_question_file(path: Path) -> bool:
    from lima.eval.formats.common import first_object

    obj = first_object(path) if path.suffix in (".jsonl", ".json") else None
    return obj is not None and detect_kind(obj) == "prompts"
