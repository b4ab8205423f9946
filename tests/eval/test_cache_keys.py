"""One cache key for every request (``lima.core.llm_client.request_key``): a reply is reused only when the
server would have been asked the same thing. Each test here reran into the same cache and got the old replies
before the key was the request as sent."""

from __future__ import annotations

import json

import pytest

from lima.core.config import load_config
from lima.core.endpoint import EndpointConfig
from lima.core.llm_client import ChatRequest, LLMClient, request_key
from lima.eval.config import GradeConfig, JudgeConfig
from lima.eval.grade import run_grading
from lima.eval.judge import run_judging
from tests.eval.fake_openai import FakeOpenAI
from tests.eval.test_judge import _config, _gen


def _allowed(body: dict) -> str:
    """The one letter the request's grammar allows: what a llama.cpp server constrained by it would say."""
    return "B" if '"B"' in body.get("grammar", "") and '"A"' not in body["grammar"] else "A"


def test_an_edited_grammar_file_is_sent_again_not_read_from_the_cache(tmp_path):
    pytest.importorskip("llama_cpp")  # grammars are validated with llama.cpp's parser
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red", "p2": "4"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue", "p2": "5"})
    grammar = tmp_path / "verdict.gbnf"
    grammar.write_text('root ::= "A"\n')
    fields = {"verdict": "logprobs", "server": "llamacpp", "template": "pairwise_logprobs.txt"}
    with FakeOpenAI(
        reply=_allowed, first_token_logprobs=lambda body: {_allowed(body): 0.0}, flavour="llamacpp"
    ) as fake:
        config = _config(tmp_path, fake.base_url, grammar=str(grammar), **fields)
        first = run_judging(load_config(config, JudgeConfig), a, b, tmp_path / "run")
        assert len(fake.requests) == 4
        grammar.write_text('root ::= "B"\n')  # the same path, another grammar
        second = run_judging(load_config(config, JudgeConfig), a, b, tmp_path / "run")
    assert len(fake.requests) == 8, "the new grammar's requests must be sent, not answered from the cache"
    assert all(body["grammar"] == 'root ::= "B"\n' for body in fake.requests[4:])
    assert second["client"]["cache_hits"] == 0
    # Model A shown first in AB and second in BA: "always A" then "always B" are position ties either way,
    # so the per-order verdicts are what tell the two runs apart.
    lines = (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()
    orders = [json.loads(line)["orders"] for line in lines]
    assert {o["positional"] for pair in orders for o in pair} == {"B"}
    assert first["n"] == second["n"] == 2


def test_embedded_context_size_is_part_of_the_key(tmp_path):
    """``embedded_n_ctx`` decides what the embedded server can read (a long prompt is cut or refused), so a
    reply made at one context size is not reused at another."""
    request = ChatRequest("k", [{"role": "user", "content": "Name a colour."}], max_tokens=4)
    replies = []
    with FakeOpenAI(reply=lambda body: "red") as fake:
        for n_ctx in (4096, 4096, 8192):
            endpoint = EndpointConfig(embedded_n_ctx=n_ctx)
            with LLMClient(endpoint, tmp_path / "cache.sqlite", progress=False) as client:
                client._base_url = fake.base_url  # stands in for the embedded server, not started in a test
                replies.append(client.complete(request).cached)
    assert replies == [False, True, False] and len(fake.requests) == 2
    assert request_key(EndpointConfig(embedded_n_ctx=4096), request) != request_key(
        EndpointConfig(embedded_n_ctx=8192), request
    )


def test_grade_seed_changes_the_requests_sent(tmp_path):
    gen = tmp_path / "gen.jsonl"
    gen.write_text(
        "".join(
            json.dumps({"prompt_id": f"p{i}", "prompt": f"question {i}", "model": "m", "output": "ok"}) + "\n"
            for i in range(4)
        )
    )
    with FakeOpenAI(reply=lambda body: f"Score: {1 + body['seed'] % 6}") as fake:
        endpoint = {"base_url": fake.base_url, "model": "fake", "api_key_env": None, "max_retries": 1}
        runs = []
        for seed in (1, 2):
            config = GradeConfig(endpoint=endpoint, samples=2, seed=seed)
            runs.append(run_grading(config, gen, tmp_path / "grade"))
    assert len(fake.requests) == 16, "seed 2 must send its own 8 requests, not reuse seed 1's grades"
    assert runs[1]["client"]["requests"] == 8 and runs[1]["client"]["cache_hits"] == 0
    assert {b["seed"] for b in fake.requests[:8]}.isdisjoint(b["seed"] for b in fake.requests[8:])


def test_the_key_is_the_request_as_sent():
    endpoint = EndpointConfig(base_url="http://localhost:1/v1", model="m", api_key_env=None)
    base = ChatRequest("k", [{"role": "user", "content": "x"}])
    key = request_key(endpoint, base)
    changed = [
        ChatRequest("k", [{"role": "user", "content": "y"}]),
        ChatRequest("k", base.messages, temperature=0.5),
        ChatRequest("k", base.messages, max_tokens=7),
        ChatRequest("k", base.messages, top_p=0.9),
        ChatRequest("k", base.messages, seed=3),
        ChatRequest("k", base.messages, stop=["\n"]),
        ChatRequest("k", base.messages, extra_body={"grammar": 'root ::= "A"'}),
        ChatRequest("k", base.messages, response_format={"type": "json_object"}),
        ChatRequest("k", base.messages, top_logprobs=5),
        ChatRequest("k2", base.messages),  # the caller's draw (a re-ask, a sample)
    ]
    assert len({key, *(request_key(endpoint, r) for r in changed)}) == len(changed) + 1
    assert request_key(endpoint.model_copy(update={"model": "m2"}), base) != key
    assert request_key(endpoint.model_copy(update={"base_url": "http://localhost:2/v1"}), base) != key
    # what does not change the reply does not change the key
    assert request_key(endpoint.model_copy(update={"concurrency": 9, "timeout_s": 5.0}), base) == key
    assert request_key(endpoint, ChatRequest("k", [{"content": "x", "role": "user"}])) == key


def test_progress_line_counts_the_cache_read_only(tmp_path):
    from lima.core.chat_cache import ResponseCache, count_cached
    from lima.core.cli_util import replies_cached

    path = tmp_path / "judge_cache.sqlite"
    assert count_cached(path) is None and replies_cached(path) == ""
    cache = ResponseCache(path)
    for key in ("k1", "k2"):
        cache.put(key, ["reply"], 3, 1, "m")
    cache.close()
    assert count_cached(path) == 2
    assert replies_cached(path) == f"2 replies cached in {path}"
