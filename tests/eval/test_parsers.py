"""Judge-reply parsers over realistic replies: the last verdict token wins; none -> None (an error)."""

from __future__ import annotations

import pytest

from lima.eval.parsers import (
    parse_arena_hard,
    parse_likert,
    parse_lima_3way,
    parse_logprobs,
    parse_mtbench,
    parse_structured,
    verdict_schema,
)

LIMA = [
    ("Answer A is significantly better", "A"),
    ("After comparing both, I conclude: **Answer B is significantly better.**", "B"),
    ("Neither is significantly better", "tie"),
    # the judge quotes the options first, then decides: the last one wins
    (
        "The options are 'Answer A is significantly better' or 'Answer B is significantly better'.\n"
        "Verdict: Neither is significantly better",
        "tie",
    ),
    ("Answer B is significantly better... on reflection, Answer A is significantly better", "A"),
    ("answer  a IS significantly better", "A"),
    # "Neither answer A nor answer B": the trailing "answer B is significantly better" is not a B verdict
    ("Neither answer A nor answer B is significantly better.", "tie"),
    ("Both are thin. Neither Answer A nor Answer B is significantly better", "tie"),
    ("neither A nor B is significantly better", "tie"),
    ("Neither of them is significantly better", "tie"),
    ("Neither of the two answers is significantly better", "tie"),
    ("Neither one is significantly better", "tie"),
    # ... and the last-verdict rule still holds around it
    ("Neither answer A nor answer B is significantly better? No: Answer B is significantly better", "B"),
    ("Answer A is significantly better. Hmm, neither answer A nor answer B is significantly better", "tie"),
    ("Answer A is better", None),  # not the protocol's phrase
    ("I think both answers are fine.", None),
    ("", None),
]
MTBENCH = [
    ("Assistant A is more detailed and accurate. [[A]]", "A"),
    ("Both are similar in quality.\n\nFinal verdict: [[C]]", "tie"),
    ('Output "[[A]]" if A is better, "[[B]]" if B is better. My verdict: [[B]]', "B"),
    ("[[A]] ... wait, B handles the edge case. [[ B ]]", "B"),
    ("I prefer assistant A.", None),
    ("[[D]]", None),
]
ARENA = [
    ("My final verdict is tie: [[A=B]]", "tie", "A=B"),
    ("Assistant B is significantly better: [[B>>A]]", "B", "B>>A"),
    ("[[A>>B]] is tempting, but overall [[A>B]]", "A", "A>B"),
    ("Final: [[B<A]]", "A", "A>B"),
    ("Final verdict: [[A<<B]]", "B", "B>>A"),
    ("Assistant A is better.", None, None),
    ("[[A>A]]", None, None),
]
LIKERT = [
    ("The answer is complete and correct.\nScore: 5", 5),
    ("Score: 2. Actually, after checking the facts again, Score: 4", 4),
    ("Rating: 6/6", 6),
    ("I'd give it [[3]]", 3),
    ("**Score:** 1", 1),
    ("Score: 7", None),
    ("Score: 10", None),
    ("Score: 4.5", None),
    ("It is helpful.", None),
]


@pytest.mark.parametrize(("reply", "expected"), LIMA)
def test_lima_3way(reply, expected):
    parsed = parse_lima_3way(reply)
    assert (parsed.verdict if parsed else None) == expected


@pytest.mark.parametrize(("reply", "expected"), MTBENCH)
def test_mtbench(reply, expected):
    parsed = parse_mtbench(reply)
    assert (parsed.verdict if parsed else None) == expected


@pytest.mark.parametrize(("reply", "expected", "level"), ARENA)
def test_arena_hard(reply, expected, level):
    parsed = parse_arena_hard(reply)
    assert (parsed.verdict if parsed else None) == expected
    assert (parsed.level if parsed else None) == level


@pytest.mark.parametrize(("reply", "expected"), LIKERT)
def test_likert(reply, expected):
    assert parse_likert(reply) == expected


STRUCTURED = [
    ('{"reasoning": "B misses the point.", "verdict": "A"}', "lima_3way", "A"),
    ('```json\n{"reasoning": "same", "verdict": "tie"}\n```', "lima_3way", "tie"),
    ('{"reasoning": "close", "verdict": "C"}', "mtbench", "tie"),
    ('{"reasoning": "B is a bit better", "verdict": "B>A"}', "arena_hard", "B"),
    ('{"reasoning": "cut off by max_tok', "lima_3way", None),  # truncated before the verdict
    ('{"reasoning": "unterminated \n "verdict": "B"', "lima_3way", "B"),  # broken JSON, verdict present
    ('{"reasoning": "x", "verdict": "maybe"}', "lima_3way", None),  # off the enum
    ('{"reasoning": "x", "verdict": "[[A]]"}', "mtbench", None),
    ("Answer A is significantly better", "lima_3way", None),  # not JSON at all
]


@pytest.mark.parametrize(("reply", "parser", "expected"), STRUCTURED)
def test_structured(reply, parser, expected):
    parsed = parse_structured(reply, parser)
    assert (parsed.verdict if parsed else None) == expected


def test_verdict_schema_puts_reasoning_first_and_enumerates_verdicts():
    schema = verdict_schema("arena_hard", 300)
    assert list(schema["properties"]) == ["reasoning", "verdict"]
    assert schema["properties"]["verdict"]["enum"] == ["A>>B", "A>B", "A=B", "B>A", "B>>A"]
    assert schema["properties"]["reasoning"]["maxLength"] == 300
    assert "maxLength" not in verdict_schema("lima_3way")["properties"]["reasoning"]


def _token(chosen: str, alternatives: dict[str, float]) -> list[dict]:
    return [
        {
            "token": chosen,
            "logprob": alternatives.get(chosen, -9.0),
            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alternatives.items()],
        }
    ]


def test_logprobs_soft_preference_sums_spellings_and_ignores_other_tokens():
    import math

    tokens = _token("A", {"A": math.log(0.5), " A": math.log(0.1), "B": math.log(0.2), "The": math.log(0.2)})
    parsed = parse_logprobs(tokens)
    assert parsed.verdict == "A" and parsed.p_first == pytest.approx(0.6 / 0.8)


def test_logprobs_chosen_token_outside_top_k_counts_and_missing_letter_is_zero():
    import math

    # llama.cpp appends the chosen token when it is not in the top k (k+1 entries); here only B is known.
    tokens = _token("B", {"The": math.log(0.6), "Answer": math.log(0.3)})
    tokens[0]["logprob"] = math.log(0.01)
    parsed = parse_logprobs(tokens)
    assert parsed.verdict == "B" and parsed.p_first == 0.0


def test_logprobs_without_either_letter_is_none():
    import math

    assert parse_logprobs(_token("The", {"The": math.log(0.9), "I": math.log(0.1)})) is None
    assert parse_logprobs([]) is None and parse_logprobs(None) is None


def test_every_pairwise_parser_can_be_chosen_in_a_judge_config():
    """A parser that exists but that JudgeConfig rejects (or that has no structured enum) is unusable."""
    from lima.eval.config import PARSER_ALIASES, JudgeConfig
    from lima.eval.parsers import PAIRWISE_PARSERS, VERDICT_ENUMS

    for name in PAIRWISE_PARSERS:
        assert JudgeConfig(parser=name).parser == PARSER_ALIASES.get(name, name)
        assert name in VERDICT_ENUMS


def test_the_old_parser_name_mtbench_is_last_tag_and_warns_once(capsys):
    """`mtbench` read the last tag, which is not MT-Bench's rule (that is `fastchat`): renamed, old name kept."""
    from lima.eval import config as config_module
    from lima.eval.config import JudgeConfig
    from lima.eval.parsers import PAIRWISE_PARSERS, parse_last_tag

    config_module._WARNED.discard("parser:mtbench")
    assert JudgeConfig(parser="mtbench").parser == "last_tag"
    assert JudgeConfig(parser="mtbench").parser == "last_tag"
    assert capsys.readouterr().err.count("parser: mtbench is now called last_tag") == 1
    assert PAIRWISE_PARSERS["last_tag"] is parse_last_tag
    reply = "Format: [[A]], [[B]] or [[C]]. Verdict: [[B]]"
    assert parse_last_tag(reply).verdict == "B" and PAIRWISE_PARSERS["fastchat"](reply).verdict == "A"


def test_the_panels_per_order_margin_is_order_tie_margin(capsys):
    from lima.eval import config as config_module
    from lima.eval.config import JudgeConfig, PanelConfig

    config_module._WARNED.discard("panel.tie_margin")
    old = PanelConfig(judges=[JudgeConfig(), JudgeConfig()], tie_margin=0.1)
    assert old.order_tie_margin == 0.1 and "now called order_tie_margin" in capsys.readouterr().err
