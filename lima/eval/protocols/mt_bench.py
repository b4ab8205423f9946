"""MT-Bench's protocol (FastChat ``llm_judge``): the two-turn generation plan and the pair-v2 prompt strategy.
Its files are read and written by :mod:`lima.eval.formats.mt_bench`.

- generation: turn k continues the conversation with the model's **own** answers to turns 1..k-1, as
  FastChat's ``gen_model_answer`` does (ids ``81``, ``81:turn2``);
- judging: with FastChat's pair-v2 template, a later-turn pair is shown as pair-v2-multi-turn does: each
  model's own whole conversation, with its own system prompt, in both orders.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.formats.mt_bench import NAME, read_questions, read_references, split_turn_id, turn_id
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


# FastChat's categories judged against a reference answer (common.NEED_REF_CATS; arena-hard-200 is not MT-Bench's
# but kept, as FastChat keeps it).
NEED_REF_CATS = ("math", "reasoning", "coding", "arena-hard-200")
PAIR_V2_TEMPLATE = "mt_bench_pair_v2.txt"  # the judge template that means "FastChat's pair-v2 family"


@dataclass(frozen=True)
class FastChatPrompt:
    """One of FastChat's judge prompts (``data/judge_prompts.jsonl``): its system prompt and user template, byte
    for byte, shipped as ``lima/eval/prompts/mt_bench_<name>.txt`` and ``..._system.txt``."""

    name: str
    template: str
    system: str

    @classmethod
    def load(cls, name: str) -> FastChatPrompt:
        base = "mt_bench_" + name.replace("-", "_")
        system = load_template(base + "_system", ())
        # the file ends with one newline more than the prompt (single-v1-multi-turn's own ends with two)
        return cls(name, load_template(base, ()), system.removesuffix("\n"))

    def messages(self, **values: str) -> list[dict[str, str]]:
        # one pass, as FastChat's str.format: an answer holding "{answer_b}" or other braces stays as it is
        user = fill(self.template, **values)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class MtBenchData:
    """What FastChat's judges read beside the answers: each question (category, turns) and the references."""

    questions: dict[str, dict[str, Any]]
    questions_path: str
    references: dict[str, list[str]] | None
    references_path: str | None

    @classmethod
    def load(cls, config: Any, what: str) -> MtBenchData:
        if not config.questions:
            raise LimaError(
                f"questions: {what} picks FastChat's reference-guided prompt for math, reasoning and coding "
                "questions by category, so it needs FastChat's question file: set questions=PATH "
                "(fastchat/llm_judge/data/mt_bench/question.jsonl)"
            )
        references = read_references(config.references) if config.references else None
        return cls(read_questions(config.questions), config.questions, references, config.references)

    def question(self, prompt_id: str) -> tuple[dict[str, Any], int, bool]:
        """The question of ``81`` / ``81:turn2``, the turn, and whether FastChat judges it by reference."""
        qid, turn = split_turn_id(prompt_id)
        if qid not in self.questions:
            raise LimaError(
                f"question {qid}: not in questions: {self.questions_path}; give the question file "
                "the answers were generated from"
            )
        question = self.questions[qid]
        if not question["meta"].get("category"):
            raise LimaError(
                f"question {qid}: no category in questions: {self.questions_path}; FastChat's question.jsonl "
                "gives every question one (it decides the reference-guided prompts)"
            )
        if turn > min(2, len(question["turns"])):
            raise LimaError(f"{prompt_id}: FastChat judges turns 1 and 2 only ({self.questions_path})")
        return question, turn, question["meta"].get("category") in NEED_REF_CATS

    def refs(self, prompt_id: str, turn: int) -> dict[str, str]:
        """``ref_answer_1`` (and ``ref_answer_2`` for turn 2) of a reference-guided question."""
        qid = split_turn_id(prompt_id)[0]
        category = self.questions[qid]["meta"].get("category")
        if self.references is None:
            raise LimaError(
                f"references: question {qid} ({category}) is judged with FastChat's reference-guided prompt and "
                "needs its reference answer: set references=PATH "
                "(fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl)"
            )
        turns = self.references.get(qid)
        if turns is None or len(turns) < turn:
            raise LimaError(
                f"question {qid} ({category}): no reference answer for turn {turn} in references: "
                f"{self.references_path}; give FastChat's reference_answer file that covers it"
            )
        return {f"ref_answer_{k}": turns[k - 1] for k in range(1, turn + 1)}


def _own_turn_1(meta: dict[str, Any], side: str, prompt_id: str) -> str:
    history = meta.get(f"history_{side}") or []
    if len(history) != 2 or history[1].get("role") != "assistant":
        raise LimaError(
            f"{prompt_id}: FastChat judges turn 2 with each model's own two-turn conversation, and model "
            f"{side.upper()}'s answer carries no turn-1 history; generate it with lima generate (MT-Bench "
            "questions) or import FastChat's model_answer file"
        )
    return history[1]["content"]


@dataclass(frozen=True)
class FastChatPairPrompt:
    """FastChat's pairwise judge (``gen_judgment.make_judge_pairwise``): pair-v2 for turn 1 (the judge config's
    template, with FastChat's system prompt unless the config gives one), pair-v2-multi-turn for turn 2, and for
    math, reasoning and coding pair-math-v1 / pair-math-v1-multi-turn with the reference answers. Turn 2 shows
    each model's own whole conversation; the system prompt is always sent (OpenAI judges, as FastChat)."""

    data: MtBenchData
    turn_1: TemplatePrompt
    prompts: dict[str, FastChatPrompt]

    def messages(self, item: PairItem, order: str, first: str, second: str) -> list[dict[str, str]]:
        question, turn, by_reference = self.data.question(item.id)
        refs = self.data.refs(item.id, turn) if by_reference else {}
        if turn == 1:
            if not by_reference:
                return self.turn_1.messages(
                    dataclasses.replace(item, prompt=question["turns"][0]), order, first, second
                )
            return self.prompts["pair-math-v1"].messages(
                question=question["turns"][0], answer_a=first, answer_b=second, **refs
            )
        sides = ("a", "b") if order == "AB" else ("b", "a")
        name = "pair-math-v1-multi-turn" if by_reference else "pair-v2-multi-turn"
        return self.prompts[name].messages(
            question_1=question["turns"][0],
            question_2=question["turns"][1],
            answer_a_1=_own_turn_1(item.meta, sides[0], item.id),
            answer_b_1=_own_turn_1(item.meta, sides[1], item.id),
            answer_a_2=first,
            answer_b_2=second,
            **refs,
        )


def turn_meta(record_a: dict[str, Any], record_b: dict[str, Any]) -> dict[str, Any]:
    """Each model's own conversation before a later-turn answer (empty for turn 1), for FastChat's multi-turn
    prompts."""
    if not record_a.get("history") or not record_b.get("history"):
        return {}
    return {
        "history_a": record_a["history"],
        "history_b": record_b["history"],
        "question": record_a["prompt"],
    }


def pair_prompt(config: Any, items: Sequence[PairItem]) -> FastChatPairPrompt | None:
    """FastChat's pair judge when the judge uses its pair-v2 template (the other prompts belong to it); None (the
    judge's own template for every turn) otherwise, and for panels. Every item's messages are built here once, so
    a missing question, reference or history stops the run before any request."""
    if getattr(config, "panel", None) is not None or Path(str(config.template)).name != PAIR_V2_TEMPLATE:
        return None
    data = MtBenchData.load(config, f"template: {PAIR_V2_TEMPLATE} (FastChat's pair-v2 family)")
    pair_v2 = FastChatPrompt.load("pair-v2")
    strategy = FastChatPairPrompt(
        data,
        TemplatePrompt(
            load_template(config.template, ("prompt", "answer_a", "answer_b")),
            config.system_prompt or pair_v2.system,
        ),
        {name: FastChatPrompt.load(name) for name in PAIR_NAMES},
    )
    for item in items:
        strategy.messages(item, "AB", item.answer_a, item.answer_b)
    return strategy


PAIR_NAMES = ("pair-v2-multi-turn", "pair-math-v1", "pair-math-v1-multi-turn")


@dataclass(frozen=True)
class FastChatSinglePrompt:
    """FastChat's single-answer grader (``gen_judgment.make_judge_single``): single-v1 for turn 1,
    single-v1-multi-turn for turn 2 (the model's own conversation), and single-math-v1 /
    single-math-v1-multi-turn with the reference answers for math, reasoning and coding."""

    data: MtBenchData
    prompts: dict[str, FastChatPrompt]

    def messages(self, record: dict[str, Any], answer: str) -> list[dict[str, str]]:
        prompt_id = str(record["prompt_id"])
        question, turn, by_reference = self.data.question(prompt_id)
        refs = self.data.refs(prompt_id, turn) if by_reference else {}
        family = "single-math-v1" if by_reference else "single-v1"
        if turn == 1:
            return self.prompts[family].messages(question=question["turns"][0], answer=answer, **refs)
        return self.prompts[family + "-multi-turn"].messages(
            question_1=question["turns"][0],
            question_2=question["turns"][1],
            answer_1=_own_turn_1({"history_a": record.get("history")}, "a", prompt_id),
            answer_2=answer,
            **refs,
        )


SINGLE_NAMES = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")


def grade_prompt(config: Any, records: Sequence[dict[str, Any]]) -> FastChatSinglePrompt | None:
    """FastChat's single-answer prompts for ``scale: mt_bench``; every record's messages are built once here,
    so a missing question, reference or history stops the run before any request."""
    if config.scale != "mt_bench":
        return None
    data = MtBenchData.load(config, "scale: mt_bench (FastChat's single-v1 family)")
    strategy = FastChatSinglePrompt(data, {name: FastChatPrompt.load(name) for name in SINGLE_NAMES})
    for record in records:
        strategy.messages(record, record["output"])
    return strategy


def owns_records(records: Sequence[dict[str, Any]]) -> bool:
    """lima generations of MT-Bench questions: later turns carry MT-Bench's turn ids and a history."""
    return any(r.get("history") and split_turn_id(str(r.get("prompt_id")))[1] > 1 for r in records)


PROTOCOL = Protocol(
    NAME,
    generate=generate_two_turns,
    pair_prompt=pair_prompt,
    pair_meta=turn_meta,
    owns_records=owns_records,
    grade_prompt=grade_prompt,
)
