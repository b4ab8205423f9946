"""Judge-reply parsers over realistic replies: the last verdict token wins; none -> None (an error)."""

from __future__ import annotations

import pytest

from lima.eval.parsers import parse_arena_hard, parse_likert, parse_lima_3way, parse_mtbench

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
