"""MT-Bench's protocol (FastChat ``llm_judge``): the two-turn generation plan and the pair-v2 prompt strategy.
Its files are read and written by :mod:`lima.eval.formats.mt_bench`.

- generation: turn k continues the conversation with the model's **own** answers to turns 1..k-1, as
  FastChat's ``gen_model_answer`` does (ids ``81``, ``81:turn2``);
- judging: with FastChat's pair-v2 template, a later-turn pair is shown as pair-v2-multi-turn does: each
  model's own whole conversation, with its own system prompt, in both orders.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.formats.mt_bench import NAME, read_questions, split_turn_id, turn_id
from lima.eval.generation import generate_prompts, reorder
from lima.eval.judging import TemplatePrompt
from lima.eval.protocols import Protocol
from lima.eval.records import PairItem, Prompt, read_lima_generations
from lima.eval.templates import fill, load_template


def generate_two_turns(
    config: Any,
    out_path: Path,
    model: str | None = None,
    prompts: str | os.PathLike | None = None,
    limit: int | None = None,
) -> Path:
    """Answer every turn of MT-Bench questions as FastChat's ``gen_model_answer`` does: turn k continues the
    conversation with the model's **own** answers to turns 1..k-1. One generation pass per turn (each
    resumable), all into ``out_path``, which ends in question order (``81``, ``81:turn2``, ``82``, …)."""
    if getattr(config.decoding, "samples", 1) > 1:
        raise LimaError("MT-Bench two-turn generation takes one response per turn; set decoding.samples=1")
    out_path = Path(out_path)
    question_path = Path(prompts or config.prompts)
    questions = list(read_questions(question_path).items())[:limit]
    answers: dict[str, str] = {}
    for turn in range(1, max(len(q["turns"]) for _, q in questions) + 1):
        batch = []
        for qid, question in questions:
            if len(question["turns"]) < turn:
                continue
            messages = []
            for earlier in range(1, turn):
                messages += [
                    {"role": "user", "content": question["turns"][earlier - 1]},
                    {"role": "assistant", "content": answers[turn_id(qid, earlier)]},
                ]
            messages.append({"role": "user", "content": question["turns"][turn - 1]})
            batch.append(Prompt(turn_id(qid, turn), messages[-1]["content"], messages))
        generate_prompts(config, out_path, batch, model=model, inputs=[question_path])
        answers = {r["prompt_id"]: r["output"] for r in read_lima_generations(out_path, allow_empty=True)}
    reorder(out_path, [turn_id(qid, t) for qid, q in questions for t in range(1, len(q["turns"]) + 1)])
    return out_path


# FastChat judges turn 2 with pair-v2-multi-turn: each model's own whole conversation, focus on the second answer.
MULTI_TURN = {
    "mt_bench_pair_v2.txt": ("mt_bench_pair_v2_multi_turn.txt", "mt_bench_pair_v2_multi_turn_system.txt")
}
_MULTI_TURN_FIELDS = ("question_1", "answer_a_1", "question_2", "answer_a_2", "answer_b_1", "answer_b_2")


def turn_meta(record_a: dict[str, Any], record_b: dict[str, Any]) -> dict[str, Any]:
    """What a pair-v2-multi-turn judge needs of a later-turn pair: each model's conversation before the last
    question, and that question (empty for single-turn pairs)."""
    if not record_a.get("history") or not record_b.get("history"):
        return {}
    return {
        "history_a": record_a["history"],
        "history_b": record_b["history"],
        "question": record_a["prompt"],
    }


def multi_turn_prompt(template: str, meta: dict[str, Any], first: str, second: str, order: str) -> str | None:
    """The pair-v2-multi-turn user prompt with the conversations in ``order`` (AB: model A's shown first)."""
    history_a, history_b = meta.get("history_a"), meta.get("history_b")
    if not history_a or not history_b or len(history_a) != 2 or len(history_b) != 2:
        return None  # FastChat's template has exactly two turns
    shown_first, shown_second = (history_a, history_b) if order == "AB" else (history_b, history_a)
    return fill(
        template,
        question_1=shown_first[0]["content"],
        question_2=meta["question"],
        answer_a_1=shown_first[1]["content"],
        answer_a_2=first,
        answer_b_1=shown_second[1]["content"],
        answer_b_2=second,
    )


@dataclass(frozen=True)
class PairV2Prompt:
    """pair-v2 (the judge's own template) for turn 1; pair-v2-multi-turn with its system prompt for later
    turns, the whole answers shown (as FastChat does)."""

    single_turn: TemplatePrompt
    multi_turn_template: str
    multi_turn_system: str

    def messages(self, item: PairItem, order: str, first: str, second: str) -> list[dict[str, str]]:
        answers = (item.answer_a, item.answer_b) if order == "AB" else (item.answer_b, item.answer_a)
        prompt = multi_turn_prompt(self.multi_turn_template, item.meta, *answers, order)
        if prompt is None:
            return self.single_turn.messages(item, order, first, second)
        return [
            {"role": "system", "content": self.multi_turn_system},
            {"role": "user", "content": prompt},
        ]


def pair_prompt(config: Any) -> PairV2Prompt | None:
    """The pair-v2 strategy when the judge uses FastChat's pair-v2 template (the multi-turn prompt belongs to
    it); None (the judge's own template for every turn) otherwise, and for panels."""
    companion = MULTI_TURN.get(Path(str(config.template)).name)
    if getattr(config, "panel", None) is not None or companion is None:
        return None
    template, system = companion
    return PairV2Prompt(
        TemplatePrompt(
            load_template(config.template, ("prompt", "answer_a", "answer_b")), config.system_prompt
        ),
        load_template(template, _MULTI_TURN_FIELDS),
        load_template(system, ()).strip(),
    )


def owns_records(records: Sequence[dict[str, Any]]) -> bool:
    """lima generations of MT-Bench questions: later turns carry MT-Bench's turn ids and a history."""
    return any(r.get("history") and split_turn_id(str(r.get("prompt_id")))[1] > 1 for r in records)


PROTOCOL = Protocol(
    NAME, generate=generate_two_turns, pair_prompt=pair_prompt, pair_meta=turn_meta, owns_records=owns_records
)
