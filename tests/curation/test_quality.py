"""LLM quality rating through the shared client against the embedded judge server."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.curation.conftest import assert_ok, read_jsonl, summary


@pytest.mark.server
def test_llm_rating_orders_and_is_cached(curate, judge_server, tmp_path):
    source = tmp_path / "short.jsonl"  # short pairs keep the CPU judge quick
    pairs = [
        ("What is 2 + 2?", "4."),
        ("Name a primary colour.", "Red."),
        ("What is the capital of France?", "Paris."),
    ]
    rows = [{"id": f"q{i}", "source": "manual", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, (q, a) in enumerate(pairs)]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = (
        "--input", str(source), "selection.quotas={manual: 2}", "dev.size=0",
        "selection.order=quality", "quality.kind=llm", "quality.scale=alpagasus", "quality.max_tokens=2",
        f"quality.endpoint.base_url={judge_server.base_url}", f"quality.endpoint.model={judge_server.alias}",
        "quality.endpoint.api_key_env=null",
    )  # fmt: skip
    result, out = curate(*args)
    assert_ok(result)
    train = read_jsonl(out / "train.jsonl")
    assert len(train) == 2
    ratings = [r["meta"]["quality"] for r in train]
    problems = summary(out)["counts"]["quality_problems"]
    assert problems["rating_error"] == 0
    assert all(q is None or 1 <= q <= 5 for q in ratings)
    db = sqlite3.connect(out / "quality_cache.sqlite")
    assert db.execute("SELECT COUNT(*) FROM completions").fetchone()[0] == 3  # every candidate rated once
    db.close()
    result, again = curate(*args, out=out)  # rerun: answered from the cache, same selection
    assert_ok(result)
    assert [r["id"] for r in read_jsonl(again / "train.jsonl")] == [r["id"] for r in train]
    assert json.loads((out / "manifest.json").read_text())["status"] == "ok"
