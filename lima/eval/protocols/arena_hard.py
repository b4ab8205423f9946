"""Arena-Hard-Auto's protocol (lmarena/arena-hard-auto), per version, chosen by the judge config's
``arena_hard_version``:

- **0.1** (``gen_judgment.py`` and ``config/judge_config.yaml`` of v0.1): the system prompt
  ``arena_hard_system.txt``, the user prompt ``arena_hard_user.txt`` (``<|User Prompt|>`` …), judge
  gpt-4-1106-preview at temperature 0 with max_tokens 4096, its verdict rule (parser ``arena_hard_v01``: two
  distinct labels -> no verdict), and its second attempt: a reply without any label is followed, in the same
  conversation, by "continue your judgment and finish by outputting a final verdict label", and the verdict is
  read from both replies together (``parse_retries: 1``: its ``number_of_judgment_attempts: 2``);
- **2.0** (``gen_judgment.py``, ``config/arena-hard-v2.0.yaml``, ``utils/judge_utils.py``): the same user
  prompt; the system prompt by the question's category (``creative_writing``:
  ``arena_hard_v2_creative_writing_system.txt``, the others v0.1's), judge gpt-4.1 at temperature 0 with
  max_tokens 16000, its verdict rule (parser ``arena_hard_v2``: the last ``[[…]]`` label, else ``[…]``).

Game 1 shows the baseline (model B) as assistant A, game 2 the model: lima's orders BA and AB. Each judgment
carries ``meta.arena_hard_version`` (and the category), so that its summary scores it as that version does
(:mod:`lima.eval.arena_hard_stats`). Its files are read by :mod:`lima.eval.formats.arena_hard`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.eval.formats.arena_hard import NAME, read_question_categories
from lima.eval.judging import PAIR_PLACEHOLDERS
from lima.eval.parsers import ARENA_V01_LABELS
from lima.eval.protocols import Protocol
from lima.eval.records import PairItem
from lima.eval.templates import load_template

SYSTEM = "arena_hard_system.txt"  # v0.1's system prompt, and v2.0's for every category but creative writing
V2_SYSTEM = {"creative_writing": "arena_hard_v2_creative_writing_system.txt"}
V2_OG_CATEGORIES = ("hard_prompt", "coding", "math", "arena-hard-v0.1")
_PLACEHOLDER = re.compile(r"\{(prompt|answer_a|answer_b)\}")


def render(template: str, prompt: str, first: str, second: str) -> str:
    """The user prompt in one pass, as arena-hard-auto's ``str.format`` fills it (an answer that itself
    contains ``{answer_b}`` stays as written)."""
    values = {"prompt": prompt, "answer_a": first, "answer_b": second}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@dataclass(frozen=True)
class ArenaHardPrompt:
    """arena-hard-auto's messages for one game: its system prompt (v2.0: by category), then the user prompt."""

    version: str
    template: str
    system: str
    system_by_category: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)  # prompt id -> category (the judge's questions)
    # v2.0 for pairs that are no Arena-Hard question (calibration on human labels): the hard-prompt system prompt
    any_category: bool = False

    def system_prompt(self, item: PairItem) -> str:
        if self.version == "0.1":
            return self.system
        category = item.meta.get("category") or self.categories.get(item.id)
        if category in self.system_by_category:
            return self.system_by_category[category]
        if category in V2_OG_CATEGORIES or self.any_category:
            return self.system
        raise LimaError(
            f"prompt {item.id!r}: Arena-Hard v2.0 picks the judge's system prompt by the question's category, and "
            f"{'it has none' if category is None else f'{category!r} is not one of its categories'}; set "
            "questions=data/arena-hard-v2.0/question.jsonl in the judge config (or on the command line)"
        )

    def messages(self, item: PairItem, order: str, first: str, second: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system_prompt(item)},
            {"role": "user", "content": render(self.template, item.prompt, first, second)},
        ]


CONTINUE = "continue your judgment and finish by outputting a final verdict label"  # v0.1's gen_judgment.py


@dataclass(frozen=True)
class ArenaHardV01Prompt(ArenaHardPrompt):
    """v0.1, with its second attempt in the same conversation (the engine's ``follow_up`` hooks)."""

    def follow_up(self, messages: list[dict[str, str]], replies: Sequence[str]) -> list[dict[str, str]]:
        for reply in replies:
            messages = [
                *messages,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": CONTINUE},
            ]
        return messages

    def reply_text(self, replies: Sequence[str]) -> str:
        """What its verdict is read from (its stored ``judgment``): every reply, each after a newline."""
        return "".join("\n" + reply for reply in replies)

    def ask_again(self, text: str) -> bool:
        """Only a reply without any label is asked to go on; two distinct labels stay a null game."""
        return not [m for m in ARENA_V01_LABELS.findall(text) if m]


def _categories(config: Any) -> dict[str, str]:
    questions = getattr(config, "questions", None)
    return read_question_categories(Path(questions)) if questions else {}


def pair_prompt(config: Any, items: Sequence[Any] = ()) -> ArenaHardPrompt | None:
    """The strategy of the config's Arena-Hard version; None (the config's own template) without one.
    ``items``: the protocol hook's signature; every Arena-Hard item is judged with the same prompt."""
    version = getattr(config, "arena_hard_version", None)
    if version is None:
        return None
    strategy = ArenaHardV01Prompt if version == "0.1" else ArenaHardPrompt
    return strategy(
        version,
        load_template(config.template, PAIR_PLACEHOLDERS),
        config.system_prompt or load_template(SYSTEM, ()),
        {c: load_template(name, ()) for c, name in V2_SYSTEM.items()} if version == "2.0" else {},
        _categories(config),
    )


def _category(record: dict[str, Any]) -> str | None:
    meta = record.get("meta") or {}
    return meta.get("category") or record.get("category")


def pair_meta_for(version: str | None, categories: dict[str, str] | None = None) -> Any:
    def pair_meta(record_a: dict[str, Any], record_b: dict[str, Any]) -> dict[str, Any]:
        """What the summary needs of a judged pair: the version, and the question's category if known."""
        meta: dict[str, Any] = {}
        if version is not None:
            meta["arena_hard_version"] = version
        category = _category(record_a) or _category(record_b) or (categories or {}).get(record_a["prompt_id"])
        if category:
            meta["category"] = category
        return meta

    return pair_meta


PROTOCOL = Protocol(NAME, pair_prompt=pair_prompt, pair_meta=pair_meta_for(None))


def protocol_for(config: Any) -> Protocol:
    """The protocol of a judge config that names its Arena-Hard version: its judgments carry the version."""
    return Protocol(
        NAME, pair_prompt=pair_prompt, pair_meta=pair_meta_for(config.arena_hard_version, _categories(config))
    )
