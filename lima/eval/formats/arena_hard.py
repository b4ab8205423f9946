"""Arena-Hard-Auto files (lmarena/arena-hard-auto, ``data/<bench>/``), JSONL; v2.0 and v0.1 layouts.

- ``question.jsonl``: v2 ``uid``, ``category``, ``prompt``; v0.1 ``question_id``, ``category``,
  ``turns: [{content}]``;
- ``model_answer/<model>.jsonl``: v2 ``uid``, ``ans_id``, ``model``,
  ``messages: [{role: user, content}, {role: assistant, content: {answer} | str}]``, ``metadata``;
  v0.1 ``question_id``, ``answer_id``, ``model_id``, ``choices: [{index, turns: [{content}]}]``;
- ``model_judgment/<judge>/<model>.jsonl``: ``uid`` (v0.1 ``question_id``), ``model``, ``baseline``,
  ``games``: two games, each with ``score`` (``A>>B`` … ``B>>A``, null when the judge's reply had no verdict)
  and ``judgment``. Game 1 shows the **baseline** as assistant A, game 2 the model.

Imported judgments carry the version that wrote them (``meta.arena_hard_version``), so that ``lima summarize``
applies that version's rules (:mod:`lima.eval.arena_hard_stats`): a v0.1 row with one null game is kept (the
null game weighs 0; the pair itself has no verdict), a v2.0 row with a null game is skipped, as each version's
``show_result.py`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
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

NAME = "arena_hard"
# what `export_file` writes for each kind of lima file
EXPORTED = {
    "judgments": "Arena-Hard model_judgment",
    "generations": "Arena-Hard model_answer",
    "prompts": "prompts",
}


def _text(content: Any) -> str | None:
    """A message content: a string, or v2's ``{"answer": ...}``."""
    if isinstance(content, dict):
        content = content.get("answer")
    return content if isinstance(content, str) else None


def source_id(obj: dict[str, Any]) -> str:
    return str(obj["uid"] if "uid" in obj else obj["question_id"])


def detect_kind(obj: dict[str, Any]) -> str | None:
    if "games" in obj and ("uid" in obj or "question_id" in obj):
        return "judgments"
    if "uid" in obj and isinstance(obj.get("prompt"), str):
        return "prompts"
    if "uid" in obj and isinstance(obj.get("messages"), list):
        return "answers"
    turns = obj.get("turns")
    if "question_id" in obj and isinstance(turns, list) and turns and isinstance(turns[0], dict):
        return "prompts"
    choices = obj.get("choices")
    if "question_id" in obj and isinstance(choices, list) and choices and isinstance(choices[0], dict):
        answer_turns = choices[0].get("turns")
        if isinstance(answer_turns, list) and answer_turns and isinstance(answer_turns[0], dict):
            return "answers"
    return None


def _question_text(obj: dict[str, Any]) -> str | None:
    if isinstance(obj.get("prompt"), str):
        return obj["prompt"]
    turns = obj.get("turns")
    return (
        _text(turns[0].get("content"))
        if isinstance(turns, list) and turns and isinstance(turns[0], dict)
        else None
    )


def read_questions(path: Path) -> dict[str, str]:
    questions = {}
    for row in load_rows(path):
        obj = require(row)
        text = _question_text(obj)
        if text is None or not ("uid" in obj or "question_id" in obj):
            raise LimaError(f"{row.where}: expected uid and prompt (v2) or question_id and turns (v0.1)")
        questions[source_id(obj)] = text
    return questions


def read_question_categories(path: Path) -> dict[str, str]:
    """``{question id: category}`` of a question.jsonl (Arena-Hard's, either version, or FastChat's)."""
    if not path.is_file():
        raise LimaError(f"questions: {path} not found; give the benchmark's question.jsonl")
    categories = {}
    for row in load_rows(path):
        obj = require(row)
        if not ("uid" in obj or "question_id" in obj) or not isinstance(obj.get("category"), str):
            raise LimaError(f"{row.where}: expected a question with uid (or question_id) and category")
        categories[source_id(obj)] = obj["category"]
    return categories


def import_prompts(rows: list[Row], result: ImportResult) -> None:
    for row in rows:
        obj = require(row)
        text = _question_text(obj)
        if text is None or not text.strip():
            result.skip(row, "no prompt text (prompt, or turns[0].content)")
            continue
        meta = rest(obj, ("uid", "question_id", "prompt", "turns"))
        result.lines.append(prompt_record(source_id(obj), NAME, [text], meta))


def import_answers(rows: list[Row], result: ImportResult, path: Path, questions_path: Path | None) -> None:
    questions: dict[str, str] | None = None
    candidate = questions_path or path.resolve().parent.parent / "question.jsonl"
    if candidate.is_file():
        questions = read_questions(candidate)
    for row in rows:
        obj = require(row)
        pid = source_id(obj)
        if isinstance(obj.get("messages"), list):  # v2
            user = next((m for m in obj["messages"] if isinstance(m, dict) and m.get("role") == "user"), None)
            reply = next(
                (m for m in obj["messages"] if isinstance(m, dict) and m.get("role") == "assistant"), None
            )
            prompt = _text(user.get("content")) if user else None
            output = _text(reply.get("content")) if reply else None
            model = obj.get("model")
            used = ("uid", "model", "messages")
        else:  # v0.1
            choices = obj.get("choices") or [{}]
            turns = choices[0].get("turns") or [{}]
            output = _text(turns[0].get("content"))
            prompt = (questions or {}).get(pid)
            model = obj.get("model_id")
            used = ("question_id", "model_id", "choices")
        if prompt is None and questions is not None:
            prompt = questions.get(pid)
        if prompt is None:
            result.skip(row, "no prompt text (v0.1 answers need --questions question.jsonl)")
            continue
        if output is None:
            result.skip(row, "no assistant answer text")
            continue
        meta = rest(obj, used)
        result.lines.append(generation(pid, prompt, str(model or path.stem), output, meta))


def _model_side(level: str) -> str:
    """Positional level (``A>>B``, ``B>A``, ``A=B`` …) -> which position won: A, B or tie."""
    return "tie" if "=" in level else level[0]


def _game(order: str, game: dict[str, Any], version: str | None) -> dict[str, Any] | None:
    """One game as a lima order entry (positional level, model-space verdict); a null score gives an entry
    without a verdict (v0.1 keeps the question), a score no version defines gives None."""
    from lima.eval.parsers import parse_arena_hard

    score, text = game.get("score"), game.get("judgment")
    raw = text.get("answer") if isinstance(text, dict) else text
    entry: dict[str, Any] = {"order": order, "positional": None, "level": None, "verdict": None}
    parsed = parse_arena_hard(f"[[{score}]]") if isinstance(score, str) else None
    if parsed is None:
        if score is not None and version != "0.1":
            return None
        # v0.1's show_result.py gives weight 0 to a game whose score is null or not one of its labels
        entry["error"] = "null score (the judge's reply had no single verdict)"
    else:
        first, second = ("B", "A") if order == "BA" else ("A", "B")  # model terms: B is the baseline
        verdict = "tie" if parsed.verdict == "tie" else (first if parsed.verdict == "A" else second)
        entry.update(positional=parsed.verdict, level=parsed.level, verdict=verdict)
    entry["raw"] = raw if isinstance(raw, str) else None
    entry["source"] = game  # the game as arena-hard-auto wrote it, for the export
    return entry


V2_CATEGORIES = ("hard_prompt", "coding", "math", "creative_writing")


def judgment_version(obj: dict[str, Any]) -> str | None:
    """The arena-hard-auto version that wrote a model_judgment row: v0.1 rows have ``question_id`` (or, as
    re-released with v2.0, category ``arena-hard-v0.1``) and games with ``user_prompt``; v2.0 rows have a v2
    category and games with the whole ``prompt``."""
    games = [g for g in obj.get("games") or [] if isinstance(g, dict)]
    if (
        "question_id" in obj
        or obj.get("category") == "arena-hard-v0.1"
        or any("user_prompt" in g for g in games)
    ):
        return "0.1"
    if obj.get("category") in V2_CATEGORIES or any("prompt" in g for g in games):
        return "2.0"
    return None


def import_judgments(rows: list[Row], result: ImportResult, path: Path) -> None:
    from lima.eval.metrics import combine

    for row in rows:
        obj = require(row, "games")
        games = obj["games"]
        if not isinstance(games, list) or len(games) != 2 or not all(isinstance(g, dict) for g in games):
            result.skip(row, "games is not a list of two games")
            continue
        version = judgment_version(obj)
        if any(g.get("score") is None for g in games) and version != "0.1":
            # v2.0's show_result.py drops the question; v0.1's keeps the other game (weight 0 for the null one)
            result.skip(row, "null judgment score (the judge's reply had no verdict)")
            continue
        orders = [_game("BA", games[0], version), _game("AB", games[1], version)]
        if orders[0] is None or orders[1] is None:
            result.skip(row, "score is not one of A>>B, A>B, A=B, B>A, B>>A")
            continue
        nulls = sum(o["level"] is None for o in orders)
        if nulls == 2:
            result.skip(row, "null judgment score (the judge's reply had no verdict)")
            continue
        model = str(obj.get("model") or path.stem)
        # v0.1's rows name no baseline: its show_result.py's default
        baseline = str(obj.get("baseline") or ("gpt-4-0314" if version == "0.1" else "baseline"))
        meta = rest(obj, ("model", "baseline", "games"))  # keeps uid / question_id, whichever it has
        if version is not None:
            meta["arena_hard_version"] = version
        ok = not nulls
        record = judgment(
            source_id(obj),
            "",
            model,
            baseline,
            "",
            "",
            combine(orders[0]["verdict"], orders[1]["verdict"]) if ok else None,
            orders=orders,
            meta=meta,
        )
        if not ok:
            record["consistent"] = None
            record["error"] = "; ".join(f"{o['order']}: {o['error']}" for o in orders if o.get("error"))
        result.lines.append(record)


def export_prompts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"uid": r["id"], **(r.get("meta") or {}), "prompt": r["messages"][0]["content"]} for r in records]


def export_generations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """v2 ``model_answer/<model>.jsonl`` rows."""
    import time

    from lima.core.io import stable_hash

    out = []
    for r in records:
        meta = dict(r.get("meta") or {})
        model = display_name(r) or "lima"
        out.append(
            {
                "uid": r["prompt_id"],
                "ans_id": meta.pop("ans_id", None) or stable_hash([r["prompt_id"], model])[:22],
                "model": model,
                "messages": [
                    {"role": "user", "content": r["prompt"]},
                    {"role": "assistant", "content": {"answer": r["output"]}},
                ],
                "tstamp": meta.pop("tstamp", None) or time.time(),
                **meta,
            }
        )
    return out


def export_judgments(judgments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``model_judgment/<judge>/<model>.jsonl`` rows (game 1: the baseline shown first)."""
    out = []
    for j in judgments:
        meta = dict(j.get("meta") or {})
        meta.pop("arena_hard_version", None)  # lima's note, not a field of arena-hard-auto's rows
        if "uid" not in meta and "question_id" not in meta:
            meta["uid"] = j["prompt_id"]
        by_order = {o.get("order"): o for o in j.get("orders") or []}
        games = [
            by_order[order].get("source")
            or {"score": by_order[order]["level"], "judgment": by_order[order].get("raw")}
            for order in ("BA", "AB")
        ]
        row = {**meta, "model": j.get("model_a"), "baseline": j.get("model_b"), "games": games}
        if "question_id" in meta:
            del row["baseline"]  # v0.1's own rows name none (its show_result.py takes --baseline)
        out.append(row)
    return out
