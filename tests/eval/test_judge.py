"""`lima judge` end to end against a local fake OpenAI endpoint: both orders, re-asks, errors never ties,
the cache, and every kind of bad input as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.eval.fake_openai import FakeOpenAI

PROMPTS = {"p1": "Name a colour.", "p2": "What is 2+2?", "p3": "Write a haiku.", "p4": "Define entropy."}


def _gen(path: Path, model: str, outputs: dict[str, str]) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {"prompt_id": pid, "prompt": PROMPTS[pid], "model": model, "output": out, "settings": {}}
            )
            + "\n"
            for pid, out in outputs.items()
        )
    )
    return path


def _config(tmp_path: Path, base_url: str, **extra) -> Path:
    data = {
        "endpoint": {
            "base_url": base_url,
            "model": "fake-judge",
            "api_key_env": None,
            "concurrency": 2,
            "max_retries": 1,
        },
        "template": "lima_3way.txt",
        "parser": "lima_3way",
        "parse_retries": 2,
        **extra,
    }
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _first_answer(body: dict) -> str:
    text = body["messages"][-1]["content"]
    return text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]", 1)[0]


def _reply(body: dict) -> str:
    """p1: always picks the first position; p2: picks the answer saying GOOD; p3: never parseable;
    p4: parseable only when re-asked (temperature > 0)."""
    text = body["messages"][-1]["content"]
    if PROMPTS["p1"] in text:
        return "Both fine. Answer A is significantly better"
    if PROMPTS["p2"] in text:
        return (
            "Answer A is significantly better"
            if "GOOD" in _first_answer(body)
            else "Answer B is significantly better"
        )
    if PROMPTS["p4"] in text and body["temperature"] > 0:
        return "Neither is significantly better"
    return "I like both of them."


def test_judge_both_orders_reasks_errors_and_cached_rerun(tmp_path, cli):
    a = _gen(
        tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "GOOD 4", "p3": "leaves fall", "p4": "disorder"}
    )
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5", "p3": "snow", "p4": "heat"})
    out = tmp_path / "run"
    with FakeOpenAI(reply=_reply) as fake:
        config = _config(tmp_path, fake.base_url)
        result = cli("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(out))
        assert result.returncode == 0, result.stderr
        # 4 prompts x 2 orders, then p3 re-asked twice per order, p4 once per order
        assert len(fake.requests) == 8 + 4 + 2
        firsts = [_first_answer(r) for r in fake.requests if PROMPTS["p2"] in r["messages"][-1]["content"]]
        assert sorted(firsts) == ["5", "GOOD 4"]  # both orders shown to the judge
        rerun = cli("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(out))
        assert rerun.returncode == 0, rerun.stderr
        assert len(fake.requests) == 14 and "requests 0, cache hits 14" in rerun.stdout

    summary = json.loads((out / "summary.json").read_text())
    judgments = {
        j["prompt_id"]: j for j in map(json.loads, (out / "judgments.jsonl").read_text().splitlines())
    }
    assert judgments["p1"]["verdict"] == "tie" and judgments["p1"]["consistent"] is False
    assert judgments["p2"]["verdict"] == "A" and judgments["p2"]["consistent"] is True
    assert judgments["p3"]["verdict"] is None and "unparseable" in judgments["p3"]["error"]
    assert [o["attempts"] for o in judgments["p3"]["orders"]] == [3, 3]
    assert judgments["p3"]["orders"][0]["replies"] == ["I like both of them."] * 3
    assert judgments["p4"]["verdict"] == "tie" and judgments["p4"]["orders"][0]["attempts"] == 2
    assert all(o["raw"] for j in judgments.values() for o in j["orders"])  # raw replies kept
    assert (summary["n"], summary["errors"], summary["wins"], summary["ties"], summary["losses"]) == (
        3,
        1,
        1,
        2,
        0,
    )
    assert summary["win_rate"] == pytest.approx(100 * 2 / 3, abs=1e-12)
    assert summary["position_consistency"] == round(100 * 2 / 3, 2)
    assert summary["mean_len_a"] == round((3 + 6 + 11 + 8) / 4, 1)
    for name in ("report.html", "winrate.png", "manifest.json", "judgments.jsonl"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "manifest.json").read_text())["status"] == "ok"


def test_judge_report_escapes_html(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "<script>alert(1)</script>"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "<b>bold</b> & co"})
    with FakeOpenAI(reply=_reply) as fake:
        result = cli(
            "judge",
            str(_config(tmp_path, fake.base_url)),
            "--a",
            str(a),
            "--b",
            str(b),
            "--out",
            str(tmp_path / "run"),
        )
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page


def test_judge_bad_inputs_exit_2_with_one_line(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "4"})
    other = _gen(tmp_path / "other.jsonl", "base", {"p1": "blue", "p3": "snow"})
    empty = _gen(tmp_path / "empty.jsonl", "base", {"p1": "blue", "p2": "  "})
    dup = tmp_path / "dup.jsonl"
    dup.write_text(a.read_text() + a.read_text().splitlines()[0] + "\n")
    config = _config(tmp_path, "http://127.0.0.1:9/v1")
    cases = [
        (other, "cover different prompts: 1 id(s) only in A"),
        (empty, "empty.jsonl: 1 empty output(s) on line(s) 2"),
        (dup, "dup.jsonl:3: duplicate prompt_id 'p1'"),
        (tmp_path / "missing.jsonl", "missing.jsonl: generations file not found"),
    ]
    for b, message in cases:
        result = cli("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "x"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    bad_key = cli("judge", str(config), "endpoint.bogus=1", "--a", str(a), "--b", str(a))
    assert bad_key.returncode == 2 and "endpoint.bogus: unknown key" in bad_key.stderr


def test_judge_refused_key_is_one_line_and_never_written(tmp_path, cli):
    secret = "sk-live-abcdef0123456789SECRET"
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue"})
    with FakeOpenAI(statuses=[401] * 5) as fake:
        config = _config(tmp_path, fake.base_url)
        result = cli(
            "judge",
            str(config),
            "endpoint.api_key_env=LIMA_JUDGE_KEY",
            "--a",
            str(a),
            "--b",
            str(b),
            "--out",
            str(tmp_path / "run"),
            env={"LIMA_JUDGE_KEY": secret},
        )
    assert result.returncode == 2 and "refused the API key (HTTP 401)" in result.stderr
    assert "Traceback" not in result.stderr and secret not in result.stderr + result.stdout
    assert len(fake.requests) == 2  # the two orders in flight (concurrency 2); no retries on 401
    written = b"".join(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert secret.encode() not in written
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "failed"


def test_judge_endpoint_failures_keep_partial_results_and_resume(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "GOOD 4"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5"})
    out = tmp_path / "run"
    # Down: nothing listens there.
    from lima.core.judge_server import free_port

    down = cli(
        "judge",
        str(_config(tmp_path, f"http://127.0.0.1:{free_port()}/v1")),
        "--a",
        str(a),
        "--b",
        str(b),
        "--out",
        str(out),
    )
    assert down.returncode == 2 and "unreachable" in down.stderr and "Traceback" not in down.stderr
    # Failing: 2 answers, then 503s beyond the retry budget -> those items are errors, not ties, not cached.
    with FakeOpenAI(statuses=[200] * 2 + [503] * 200, reply=_reply) as fake:
        config = _config(tmp_path, fake.base_url, parse_retries=0)
        first = cli("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(out))
        assert first.returncode == 0, first.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["errors"] >= 1 and summary["n"] + summary["errors"] == 2
        fake.statuses.clear()
        sent = len(fake.requests)
        second = cli("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(out))
        assert second.returncode == 0, second.stderr
        assert len(fake.requests) - sent == 2  # only the 2 failed orders are sent again
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n"], summary["errors"]) == (2, 0)
