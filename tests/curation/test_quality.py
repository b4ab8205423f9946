"""LLM quality rating through the shared client: against a scripted endpoint (exact ratings, order, drops) and
against the embedded judge server (real replies parse, the order follows them, the cache answers reruns)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from tests.curation.conftest import assert_ok, read_jsonl, summary
from tests.eval.fake_openai import FakeOpenAI

PAIRS = [
    ("What is 2 + 2?", "4."),
    ("Name a primary colour.", "Red."),
    ("What is the capital of France?", "Paris."),
    ("Name a colour of the sky.", "Blue."),
]
# The scripted rater's reply per response; "Blue." gets a reply with no rating on the scale.
REPLIES = {"4.": "4\nCorrect.", "Red.": "Rating: 2. Terse.", "Paris.": "5", "Blue.": "I cannot rate this."}


def _source(tmp_path):
    source = tmp_path / "short.jsonl"  # short pairs keep the CPU judge quick
    rows = [{"id": f"q{i}", "source": "manual", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, (q, a) in enumerate(PAIRS)]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return source


def _reply(body: dict) -> str:
    user = body["messages"][-1]["content"]
    response = re.search(r"## Response\n(.*?)\n\n## Task", user, re.S).group(1)
    return REPLIES[response]


def _args(source, base_url: str, model: str, *extra: str) -> tuple[str, ...]:
    return (
        "--input", str(source), "selection.quotas=null", "dev.size=0", "dedup.enabled=false",
        "selection.order=quality", "quality.kind=llm", "quality.scale=alpagasus", "quality.max_tokens=8",
        f"quality.endpoint.base_url={base_url}", f"quality.endpoint.model={model}",
        "quality.endpoint.api_key_env=null", *extra,
    )  # fmt: skip


def test_llm_ratings_order_the_selection_and_drop_low_ones(curate, tmp_path):
    source = _source(tmp_path)
    with FakeOpenAI(reply=_reply) as fake:
        result, out = curate(*_args(source, fake.base_url, "rater"))
        assert_ok(result)
        train = read_jsonl(out / "train.jsonl")
        assert [(r["messages"][1]["content"], r["meta"]["quality"]) for r in train] == [
            ("Paris.", 5),
            ("4.", 4),
            ("Red.", 2),
            ("Blue.", None),
        ]  # highest rating first; the unparsed one last
        assert summary(out)["counts"]["quality_problems"] == {"rating_error": 0, "rating_unparsed": 1}
        assert len(fake.requests) == 4

        result, out = curate(*_args(source, fake.base_url, "rater", "quality.min_rating=3"))
        assert_ok(result)
        assert [r["messages"][1]["content"] for r in read_jsonl(out / "train.jsonl")] == ["Paris.", "4."]
        assert summary(out)["counts"]["reasons"] == {"low_quality": 2}


@pytest.mark.server
def test_llm_rating_orders_and_is_cached(curate, judge_server, tmp_path):
    source = _source(tmp_path)
    args = _args(source, judge_server.base_url, judge_server.alias)
    result, out = curate(*args)
    assert_ok(result)
    train = read_jsonl(out / "train.jsonl")
    assert len(train) == len(PAIRS)
    ratings = [r["meta"]["quality"] for r in train]
    problems = summary(out)["counts"]["quality_problems"]
    assert problems["rating_error"] == 0
    parsed = [q for q in ratings if q is not None]
    assert parsed, f"no rating parsed from the judge's replies ({problems})"
    assert all(1 <= q <= 5 for q in parsed)
    assert problems["rating_unparsed"] == len(ratings) - len(parsed)
    # The order follows the ratings: best first, unparsed ones last.
    assert ratings == sorted(ratings, key=lambda q: -(q if q is not None else 0))
    db = sqlite3.connect(out / "quality_cache.sqlite")
    assert db.execute("SELECT COUNT(*) FROM completions").fetchone()[0] == len(PAIRS)  # each rated once
    db.close()
    result, again = curate(*args, out=out)  # rerun: answered from the cache, same selection
    assert_ok(result)
    assert [r["id"] for r in read_jsonl(again / "train.jsonl")] == [r["id"] for r in train]
    assert json.loads((out / "manifest.json").read_text())["status"] == "ok"
