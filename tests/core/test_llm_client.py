"""The shared LLM client against a local fake OpenAI server: retries, fatal errors, cache, concurrency, secrets."""

from __future__ import annotations

import pytest

from lima.core.endpoint import EndpointConfig
from lima.core.errors import LimaError
from lima.core.judge_server import free_port
from lima.core.llm_client import ChatRequest, LLMClient
from tests.eval.fake_openai import FakeOpenAI


def _endpoint(base_url: str, **kw) -> EndpointConfig:
    return EndpointConfig(base_url=base_url, model="fake-judge", api_key_env=None, **kw)


def _req(key: str) -> ChatRequest:
    return ChatRequest(key=key, messages=[{"role": "user", "content": f"question {key}"}], max_tokens=8)


def test_retries_429_then_500_then_succeeds(tmp_path):
    with (
        FakeOpenAI(statuses=[429, 500]) as fake,
        LLMClient(
            _endpoint(fake.base_url, max_retries=3), tmp_path / "c.sqlite", backoff_base_s=0.01
        ) as client,
    ):
        [result] = client.complete_many([_req("k1")])
        stats = client.stats
    assert result.ok and result.text == "[[A]]" and not result.cached
    assert len(fake.requests) == 3
    assert (stats.requests, stats.retries, stats.succeeded, stats.errors) == (3, 2, 1, 0)
    assert (stats.prompt_tokens, stats.completion_tokens) == (10, 3)


def test_cache_answers_rerun_without_requests_and_costs_are_counted(tmp_path):
    endpoint = _endpoint("http://127.0.0.1:1/v1", price_per_million_input_tokens=1e5,
                         price_per_million_output_tokens=1e6)  # fmt: skip
    with FakeOpenAI() as fake:
        endpoint = endpoint.model_copy(update={"base_url": fake.base_url})
        with LLMClient(endpoint, tmp_path / "c.sqlite") as client:
            first = client.complete_many([_req(str(i)) for i in range(5)] + [_req("0")])
            assert client.stats.cost_usd == pytest.approx(5 * (10 * 0.1 + 3 * 1.0))
        assert len(fake.requests) == 5  # the duplicate key is sent once
        with LLMClient(endpoint, tmp_path / "c.sqlite") as client:
            second = client.complete_many([_req(str(i)) for i in range(6)])
            assert client.stats.cache_hits == 5 and client.stats.requests == 1
    assert len(fake.requests) == 6
    assert [r.text for r in first[:5]] == [r.text for r in second[:5]]
    assert all(r.cached for r in second[:5]) and not second[5].cached


def test_bad_key_stops_at_once_and_never_leaks_it(tmp_path, monkeypatch):
    secret = "sk-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("LIMA_TEST_API_KEY", secret)
    endpoint = EndpointConfig(base_url="http://127.0.0.1:1/v1", model="m", api_key_env="LIMA_TEST_API_KEY")
    with FakeOpenAI(statuses=[401] * 10) as fake:
        endpoint = endpoint.model_copy(update={"base_url": fake.base_url})
        with LLMClient(endpoint, tmp_path / "c.sqlite") as client, pytest.raises(LimaError) as info:
            client.complete_many([_req("a")])
    assert len(fake.requests) == 1  # no retry on 401
    assert "LIMA_TEST_API_KEY" in str(info.value) and secret not in str(info.value)
    assert secret.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_missing_key_variable_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("LIMA_TEST_MISSING_KEY", raising=False)
    endpoint = EndpointConfig(base_url="https://example.invalid/v1", api_key_env="LIMA_TEST_MISSING_KEY")
    with pytest.raises(LimaError, match=r"\$LIMA_TEST_MISSING_KEY"):
        LLMClient(endpoint)


def test_wrong_model_404_is_fatal_and_400_is_a_per_item_error(tmp_path):
    with (
        FakeOpenAI(statuses=[404]) as fake,
        LLMClient(_endpoint(fake.base_url), None) as client,
        pytest.raises(LimaError, match="wrong model"),
    ):
        client.complete_many([_req("a")])
    with FakeOpenAI(statuses=[400]) as fake:
        # One request in flight: the scripted 400 goes to the first one sent ("bad"), not to whichever of two
        # concurrent requests reaches the fake first (that race made this test flaky).
        with LLMClient(_endpoint(fake.base_url, concurrency=1), tmp_path / "c.sqlite") as client:
            results = client.complete_many([_req("bad"), _req("good")], progress=False)
            assert client.stats.errors == 1
        by_key = {r.key: r for r in results}
        assert by_key["bad"].error and "400" in by_key["bad"].error and by_key["bad"].text is None
        assert by_key["good"].ok
        with LLMClient(_endpoint(fake.base_url), tmp_path / "c.sqlite") as client:
            client.complete_many([_req("bad"), _req("good")])
            assert client.stats.requests == 1  # errors are not cached: only the failed one is resent


def test_unreachable_endpoint_is_fatal_after_retries():
    endpoint = _endpoint(f"http://127.0.0.1:{free_port()}/v1", max_retries=2, timeout_s=2)
    with (
        LLMClient(endpoint, None, backoff_base_s=0.01) as client,
        pytest.raises(LimaError, match="unreachable"),
    ):
        client.complete_many([_req("a")])
    assert client.stats.requests == 3


def test_concurrency_is_bounded(tmp_path):
    with (
        FakeOpenAI(latency_s=0.1) as fake,
        LLMClient(_endpoint(fake.base_url, concurrency=3), None) as client,
    ):
        results = client.complete_many([_req(str(i)) for i in range(9)])
    assert all(r.ok for r in results)
    assert fake.max_in_flight == 3


def test_a_timeout_fails_only_that_request(tmp_path):
    with FakeOpenAI(latency_s=1.0) as fake:
        endpoint = _endpoint(fake.base_url, timeout_s=0.3, max_retries=1)
        with LLMClient(endpoint, tmp_path / "c.sqlite", backoff_base_s=0.01) as client:
            [result] = client.complete_many([_req("slow")])
            assert (client.stats.requests, client.stats.errors) == (2, 1)
    assert result.error is not None and "gave up after 2 attempts" in result.error and result.text is None
