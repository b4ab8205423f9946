"""Structured and logprob verdicts against the fake OpenAI endpoint, for each server flavour: what is sent,
what is parsed, one request per order with no re-asks, the soft win rate, and the cache of logprobs."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from lima.core.config import load_config
from lima.core.errors import LimaError
from lima.eval.config import JudgeConfig
from lima.eval.judge import run_judging
from tests.eval.fake_openai import FakeOpenAI
from tests.eval.test_judge import _config, _gen


def _pairs(tmp_path: Path) -> tuple[Path, Path]:
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "GOOD red", "p2": "GOOD 4", "p3": "leaves", "p4": "GOOD x"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5", "p3": "GOOD snow", "p4": "heat"})
    return a, b


def _answers(body: dict) -> tuple[str, str]:
    text = body["messages"][-1]["content"]
    first = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]", 1)[0]
    second = text.split("[Answer B]\n", 1)[1].split("\n\n", 1)[0]
    return first, second


def _json_reply(body: dict) -> str:
    """A judge that answers in JSON when asked to, and picks the answer saying GOOD."""
    first, second = _answers(body)
    verdict = "A" if "GOOD" in first else "B" if "GOOD" in second else "tie"
    if body.get("response_format") is None:
        return f"I pick {verdict}."  # would be unparseable for the structured parser
    return json.dumps({"reasoning": "One answer says GOOD.", "verdict": verdict})


def _judge(tmp_path: Path, base_url: str, **extra) -> JudgeConfig:
    return load_config(_config(tmp_path, base_url, **extra), JudgeConfig)


@pytest.mark.parametrize(
    ("server", "expected_format"),
    [
        ("openai", {"type": "json_schema", "strict": True, "max_length": None}),
        ("vllm", {"type": "json_schema", "strict": None, "max_length": 400}),
        ("llamacpp", {"type": "json_object", "strict": None, "max_length": 400}),
    ],
)
def test_structured_verdicts_per_server(tmp_path, server, expected_format):
    a, b = _pairs(tmp_path)
    with FakeOpenAI(reply=_json_reply, flavour=server) as fake:
        config = _judge(
            tmp_path, fake.base_url, verdict="structured", server=server, template="lima_3way_json.txt"
        )
        summary = run_judging(config, a, b, tmp_path / "run")
    assert len(fake.requests) == 8, "one request per order, no re-asks"
    fmt = fake.requests[0]["response_format"]
    assert fmt["type"] == expected_format["type"]
    schema = fmt["schema"] if fmt["type"] == "json_object" else fmt["json_schema"]["schema"]
    assert fmt.get("json_schema", {}).get("strict") == expected_format["strict"]
    assert schema["properties"]["verdict"]["enum"] == ["A", "B", "tie"]
    assert schema["properties"]["reasoning"].get("maxLength") == expected_format["max_length"]
    if server == "llamacpp":
        assert fake.requests[0]["repeat_penalty"] == 1.0
    assert (summary["errors"], summary["wins"], summary["losses"], summary["ties"]) == (0, 3, 1, 0)
    assert summary["verdict_mode"] == "structured" and summary["soft_win_rate"] is None


def test_json_schema_on_llama_cpp_is_what_the_server_rejects(tmp_path):
    """The reason llama_cpp gets json_object + schema: its json_schema form is an HTTP 500 (measured)."""
    a, b = _pairs(tmp_path)
    with FakeOpenAI(reply=_json_reply, flavour="llamacpp") as fake:
        config = _judge(
            tmp_path, fake.base_url, verdict="structured", server="vllm", template="lima_3way_json.txt"
        )
        summary = run_judging(config, a, b, tmp_path / "run")
    assert summary["errors"] == 4 and summary["n"] == 0


def _letters(body: dict) -> dict[str, float]:
    """First-token logprobs of a position-biased judge that still prefers the GOOD answer."""
    first, second = _answers(body)
    p_first = 0.9 if "GOOD" in first else 0.4 if "GOOD" in second else 0.7
    other = 0.05
    scale = 1 - other
    return {"A": math.log(p_first * scale), "B": math.log((1 - p_first) * scale), "The": math.log(other)}


@pytest.mark.parametrize("server", ["openai", "vllm", "llamacpp"])
def test_logprob_verdicts_soft_preference_and_cache(tmp_path, server):
    a, b = _pairs(tmp_path)
    out = tmp_path / "run"
    with FakeOpenAI(reply=lambda body: "A", first_token_logprobs=_letters, flavour=server) as fake:
        config = _judge(
            tmp_path, fake.base_url, verdict="logprobs", server=server, template="pairwise_logprobs.txt"
        )
        summary = run_judging(config, a, b, out)
        assert len(fake.requests) == 8, "one request per order, no re-asks"
        body = fake.requests[0]
        assert (body["logprobs"], body["top_logprobs"], body["max_tokens"]) == (True, 20, 1)
        assert ("grammar" in body) == (server == "llamacpp")
        if server == "llamacpp":
            assert body["grammar"] == 'root ::= "A" | "B"'
        rerun = run_judging(config, a, b, out)
        assert len(fake.requests) == 8 and rerun["client"]["cache_hits"] == 8
    judgments = {
        j["prompt_id"]: j for j in map(json.loads, (out / "judgments.jsonl").read_text().splitlines())
    }
    # GOOD in A: P(first)=0.9 in AB, 0.4 in BA -> P(A better) = (0.9 + 0.6) / 2
    assert judgments["p1"]["preference"] == pytest.approx(0.75)
    assert judgments["p3"]["preference"] == pytest.approx(0.25)  # GOOD in B
    assert [o["positional"] for o in judgments["p1"]["orders"]] == ["A", "B"]
    assert judgments["p1"]["verdict"] == "A" and judgments["p3"]["verdict"] == "B"
    assert summary["soft_win_rate"] == pytest.approx(100 * (0.75 * 3 + 0.25) / 4)
    assert summary["verdict_mode"] == "logprobs" and summary["errors"] == 0
    assert rerun["soft_win_rate"] == summary["soft_win_rate"]  # logprobs come back from the cache


def test_logprob_reply_without_a_letter_is_an_error_not_a_reask(tmp_path):
    a, b = _pairs(tmp_path)
    with FakeOpenAI(reply=lambda body: "The", first_token_logprobs=lambda body: {"The": -0.1}) as fake:
        config = _judge(
            tmp_path, fake.base_url, verdict="logprobs", server="openai", template="pairwise_logprobs.txt"
        )
        summary = run_judging(config, a, b, tmp_path / "run")
    assert len(fake.requests) == 8 and summary["errors"] == 4
    judgment = json.loads((tmp_path / "run" / "judgments.jsonl").read_text().splitlines()[0])
    assert "no A/B among the reply's top 20 tokens" in judgment["error"]


def test_verdict_mode_needs_the_server_named(tmp_path, cli):
    a, b = _pairs(tmp_path)
    config = _config(tmp_path, "http://127.0.0.1:9/v1", verdict="structured")
    result = cli("judge", str(config), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "x"))
    assert (
        result.returncode == 2 and "server: verdict: structured needs the endpoint's server" in result.stderr
    )
    assert "Traceback" not in result.stderr
    grammar = _config(
        tmp_path, "http://127.0.0.1:9/v1", verdict="logprobs", server="openai", grammar='root ::= "A"'
    )
    result = cli("judge", str(grammar), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "grammar: a GBNF grammar needs" in result.stderr


def test_text_mode_judge_hashes_are_unchanged_by_the_new_fields(tmp_path):
    """Adding verdict modes must not invalidate the stored calibrations of text-mode judges."""
    from lima.eval.judging import annotator_hash, judge_hash
    from lima.eval.templates import load_template

    config = _judge(tmp_path, "http://127.0.0.1:9/v1")
    template = load_template(config.template, ("prompt", "answer_a", "answer_b"))
    assert judge_hash(config, template) == annotator_hash(config, template, "retry_temperature")
    structured = config.model_copy(update={"verdict": "structured", "server": "openai"})
    assert judge_hash(structured, template) != judge_hash(config, template)


def test_old_cache_without_logprobs_column_is_upgraded(tmp_path):
    from lima.core.llm_client import ResponseCache

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE completions (key TEXT PRIMARY KEY, texts TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
        "completion_tokens INTEGER NOT NULL, model TEXT, created REAL NOT NULL)"
    )
    db.execute("INSERT INTO completions VALUES ('k', '[\"hi\"]', 3, 1, 'm', 0)")
    db.commit()
    db.close()
    cache = ResponseCache(path)
    assert cache.get_many(["k"]) == {"k": (["hi"], 3, 1, None)}
    cache.put("k2", ["A"], 5, 1, "m", [{"token": "A", "logprob": -0.1, "top_logprobs": []}])
    assert cache.get_many(["k2"])["k2"][3][0]["token"] == "A"
    cache.close()


def test_cached_row_without_logprobs_is_resent_for_a_logprob_request(tmp_path):
    from lima.core.llm_client import ChatRequest, LLMClient

    config = _judge(tmp_path, "http://127.0.0.1:9/v1")
    with FakeOpenAI(reply=lambda body: "A", first_token_logprobs=lambda body: {"A": -0.2, "B": -1.7}) as fake:
        endpoint = config.endpoint.model_copy(update={"base_url": fake.base_url})
        with LLMClient(endpoint, tmp_path / "c.sqlite", progress=False) as client:
            client.complete(ChatRequest("k", [{"role": "user", "content": "x"}]))
            result = client.complete(ChatRequest("k", [{"role": "user", "content": "x"}], top_logprobs=5))
    assert len(fake.requests) == 2 and result.logprobs[0]["top_logprobs"][0] == {
        "token": "A",
        "logprob": -0.2,
    }


def test_client_refuses_an_invalid_grammar_before_sending(tmp_path):
    pytest.importorskip("llama_cpp")
    from lima.core.llm_client import ChatRequest, LLMClient

    config = _judge(tmp_path, "http://127.0.0.1:9/v1")
    with FakeOpenAI() as fake:
        endpoint = config.endpoint.model_copy(update={"base_url": fake.base_url})
        with LLMClient(endpoint, None, progress=False) as client:
            bad = ChatRequest("k", [{"role": "user", "content": "x"}], extra_body={"grammar": "root ::= [a-"})
            with pytest.raises(LimaError, match=r"extra_body.grammar: invalid GBNF grammar"):
                client.complete(bad)
            good = ChatRequest(
                "k2", [{"role": "user", "content": "x"}], extra_body={"grammar": 'root ::= "A"'}
            )
            assert client.complete(good).ok
    assert len(fake.requests) == 1 and fake.requests[0]["grammar"] == 'root ::= "A"'


def test_invalid_grammar_in_a_judge_config_is_one_line_and_sends_nothing(tmp_path, cli):
    pytest.importorskip("llama_cpp")
    a, b = _pairs(tmp_path)
    with FakeOpenAI(reply=lambda body: "A", first_token_logprobs=_letters, flavour="llamacpp") as fake:
        for grammar, ok in (('root ::= "A" | undefined_rule', False), ('root ::= ("A" | "B")', True)):
            config = _config(
                tmp_path, fake.base_url, verdict="logprobs", server="llamacpp", grammar=grammar,
                template="pairwise_logprobs.txt",
            )  # fmt: skip
            result = cli(
                "judge", str(config), "--a", str(a), "--b", str(b), "--out", str(tmp_path / f"r{ok}")
            )
            if ok:
                assert result.returncode == 0, result.stderr
            else:
                assert result.returncode == 2 and "grammar: invalid GBNF grammar" in result.stderr, (
                    result.stderr
                )
                assert "Traceback" not in result.stderr and not fake.requests
    assert len(fake.requests) == 8 and fake.requests[0]["grammar"] == 'root ::= ("A" | "B")'


def test_judge_refuses_empty_inputs_with_exit_2(tmp_path, cli):
    a, _ = _pairs(tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    disjoint = _gen(tmp_path / "disjoint.jsonl", "base", {"p4": "x"})
    only_p1 = _gen(tmp_path / "p1.jsonl", "ours", {"p1": "x"})
    config = _config(tmp_path, "http://127.0.0.1:9/v1")
    cases = [
        (empty, a, "empty.jsonl: no generations"),
        (a, blank, "blank.jsonl: no generations"),
        (only_p1, disjoint, "no prompt in common"),
    ]
    for gen_a, gen_b, message in cases:
        result = cli("judge", str(config), "--a", str(gen_a), "--b", str(gen_b), "--out", str(tmp_path / "x"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "x" / "summary.json").exists()


def test_grammar_from_a_file_and_a_value_that_is_neither(tmp_path):
    pytest.importorskip("llama_cpp")
    from lima.eval.judging import PairwiseJudge

    gbnf = tmp_path / "verdict.gbnf"
    gbnf.write_text('root ::= "B" | "A"\n')
    fields = {"verdict": "logprobs", "server": "llamacpp", "template": "pairwise_logprobs.txt"}
    judge = PairwiseJudge(_judge(tmp_path, "http://127.0.0.1:9/v1", grammar=str(gbnf), **fields), None)
    assert judge._mode["extra_body"]["grammar"] == 'root ::= "B" | "A"\n'
    with pytest.raises(LimaError, match=r"grammar: 'nope.gbnf' is neither a GBNF grammar .* nor a file"):
        PairwiseJudge(_judge(tmp_path, "http://127.0.0.1:9/v1", grammar="nope.gbnf", **fields), None)


def test_soft_verdict_cancels_a_constant_position_bias(tmp_path):
    """A logprob judge that always leans to the first answer (A likelier in both orders) but leans less when the
    better answer is second: per-order verdicts disagree (a tie under strict combining), while the preference
    averaged over both orders still picks the better answer. tie_margin turns close calls into ties."""
    a, b = _pairs(tmp_path)

    def biased(body: dict) -> dict[str, float]:
        first, second = _answers(body)
        p_first = 0.9 if "GOOD" in first else 0.6 if "GOOD" in second else 0.75
        return {"A": math.log(p_first), "B": math.log(1 - p_first)}

    fields = {"verdict": "logprobs", "server": "openai", "template": "pairwise_logprobs.txt"}
    with FakeOpenAI(reply=lambda body: "A", first_token_logprobs=biased) as fake:
        summary = run_judging(_judge(tmp_path, fake.base_url, **fields), a, b, tmp_path / "run")
        wide = run_judging(_judge(tmp_path, fake.base_url, tie_margin=0.2, **fields), a, b, tmp_path / "wide")
    judgments = {
        j["prompt_id"]: j
        for j in map(json.loads, (tmp_path / "run" / "judgments.jsonl").read_text().splitlines())
    }
    assert [o["positional"] for o in judgments["p1"]["orders"]] == ["A", "A"]  # the bias, in both orders
    assert judgments["p1"]["consistent"] is False and judgments["p1"]["preference"] == pytest.approx(0.65)
    assert judgments["p1"]["verdict"] == "A" and judgments["p3"]["verdict"] == "B"
    assert (summary["wins"], summary["losses"], summary["position_consistency"]) == (3, 1, 0.0)
    assert wide["ties"] == 4  # |0.65 - 0.5| <= 0.2


def test_a_valid_grammar_is_checked_once_per_llama_cpp_build(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    import subprocess

    from lima.core import gbnf

    monkeypatch.setenv("LIMA_CACHE_DIR", str(tmp_path))
    runs = []
    real_run = subprocess.run
    monkeypatch.setattr(gbnf.subprocess, "run", lambda *a, **k: runs.append(1) or real_run(*a, **k))
    grammar = f'root ::= "A" | "B" # {tmp_path.name}'
    for _ in range(2):
        gbnf._check.cache_clear()
        assert gbnf.grammar_problem(grammar) is None
    assert len(runs) == 1  # the second process-level check found the marker
    gbnf._check.cache_clear()
    assert gbnf.grammar_problem('root ::= "A" | [B-') is not None and len(runs) == 2  # invalid: never marked
