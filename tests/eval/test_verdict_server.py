"""Structured and logprob verdicts against the real llama.cpp judge server (the embedded 135M model) on real
answer pairs (LLMBar Natural): every reply parses (0 errors) with one request per order, and a grammar that
llama.cpp cannot parse is refused before it can crash the server."""

from __future__ import annotations

import json
import urllib.request

import pytest
import yaml

pytestmark = [pytest.mark.server, pytest.mark.slow]

N = 4  # LLMBar Natural pairs, each judged in both orders


@pytest.fixture(scope="module")
def llmbar_gens(shared_data, tmp_path_factory):
    rows = json.loads((shared_data / "preferences" / "llmbar_natural.json").read_text())[:N]
    folder = tmp_path_factory.mktemp("llmbar")
    for side, key in (("a", "output_1"), ("b", "output_2")):
        with open(folder / f"{side}.jsonl", "w") as fh:
            for i, row in enumerate(rows):
                record = {
                    "prompt_id": f"llmbar-{i}",
                    "prompt": row["input"],
                    "model": side,
                    "output": row[key],
                }
                fh.write(json.dumps({**record, "settings": {}}) + "\n")
    return folder / "a.jsonl", folder / "b.jsonl"


def _config(tmp_path, server, **fields):
    path = tmp_path / "judge.yaml"
    endpoint = {"base_url": server.base_url, "model": server.alias, "api_key_env": None, "concurrency": 1}
    path.write_text(
        yaml.safe_dump({"endpoint": endpoint, "server": "llamacpp", "max_answer_chars": 1500, **fields})
    )
    return path


MODES = {
    "structured": {"verdict": "structured", "template": "lima_3way_json.txt", "max_tokens": 160,
                   "reasoning_max_chars": 300},
    "logprobs": {"verdict": "logprobs", "template": "pairwise_logprobs.txt"},
}  # fmt: skip


@pytest.mark.parametrize("mode", list(MODES))
def test_every_verdict_parses_on_the_real_server(mode, llmbar_gens, judge_server, tmp_path, cli):
    a, b = llmbar_gens
    out = tmp_path / "run"
    config = _config(tmp_path, judge_server, **MODES[mode])
    result = cli("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["errors"] == 0 and summary["error_orders"] == 0 and summary["n"] == N
    assert summary["client"]["requests"] == 2 * N, "one request per order, no re-asks"
    judgments = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    if mode == "logprobs":
        assert summary["soft_win_rate"] is not None
        assert all(0 <= j["preference"] <= 1 for j in judgments)
        assert all(o["raw"] in ("A", "B") for j in judgments for o in j["orders"])  # the grammar held
    else:
        for j in judgments:
            for order in j["orders"]:
                reply = json.loads(order["raw"])  # the schema held: valid JSON, reasoning first
                assert list(reply) == ["reasoning", "verdict"] and reply["verdict"] in ("A", "B", "tie")


def test_invalid_grammar_is_refused_and_the_server_lives(llmbar_gens, judge_server, tmp_path, cli):
    a, b = llmbar_gens
    config = _config(tmp_path, judge_server, verdict="logprobs", template="pairwise_logprobs.txt",
                     grammar='root ::= "A" | [B-')  # fmt: skip
    result = cli(
        "judge", str(config), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "bad"), "--limit", "1"
    )
    assert result.returncode == 2 and "grammar: invalid GBNF grammar" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    with urllib.request.urlopen(f"{judge_server.base_url}/models", timeout=10) as response:
        assert response.status == 200  # nothing reached it, so it did not crash
    good = _config(tmp_path, judge_server, verdict="logprobs", template="pairwise_logprobs.txt",
                   grammar='root ::= "B" | "A"')  # fmt: skip
    result = cli(
        "judge", str(good), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "good"), "--limit", "1"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "good" / "summary.json").read_text())["errors"] == 0
