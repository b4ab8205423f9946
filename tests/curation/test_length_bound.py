"""A generic length bound applies by default: a 5 MB response line in a JSONL source is not a training example."""

from __future__ import annotations

import json

from tests.curation.conftest import assert_ok, read_jsonl, summary


def test_a_5mb_response_is_dropped_by_default(curate, tmp_path):
    rows = [
        {"id": f"r{i}", "source": "mine", "messages": [
            {"role": "user", "content": f"Name colour number {i}."},
            {"role": "assistant", "content": f"Colour {i} is a shade of blue."}]}
        for i in range(4)
    ]  # fmt: skip
    rows[2]["messages"][1]["content"] = "blue " * 1_000_000  # 5 MB on one line
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, out = curate("--input", str(path), "selection.quotas=null", "dev.size=0", "dedup.enabled=false")
    assert_ok(result)
    train = read_jsonl(out / "train.jsonl")
    assert sorted(r["id"] for r in train) == ["r0", "r1", "r3"]
    assert summary(out)["counts"]["reasons"] == {"too_long": 1}
    lifted, out = curate("--input", str(path), "selection.quotas=null", "dev.size=0", "dedup.enabled=false",
                         "filters.generic.max_chars=null")  # fmt: skip
    assert_ok(lifted)
    assert len(read_jsonl(out / "train.jsonl")) == 4  # the bound is a default, and `null` lifts it
