"""`lima judge --dry-run` and `lima grade --dry-run`: every request written down, exactly as a real run sends it,
with nothing contacted (no server, no API key), and the count, tokens and cost printed."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from lima.core.chat_cache import ChatRequest, request_key
from lima.core.dry_run import DryRunClient, estimate_tokens
from lima.core.endpoint import EndpointConfig
from tests.eval.fake_openai import FakeOpenAI

PROMPTS = {"p1": "Name a colour.", "p2": "What is 2+2?", "p3": "Write a haiku."}
# Nothing listens here: a dry run that tried to connect would fail (or wait out its retries).
CLOSED = "http://127.0.0.1:9/v1"


def _gen(path: Path, model: str, outputs: dict[str, str]) -> Path:
    rows = [{"prompt_id": p, "prompt": PROMPTS[p], "model": model, "output": o} for p, o in outputs.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _endpoint(base_url: str, **extra) -> dict:
    return {"base_url": base_url, "model": "judge-x", "api_key_env": None, "max_retries": 0, **extra}


def _yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _sent(row: dict) -> dict:
    """The part of a requests.jsonl line that goes over the wire."""
    return {k: row[k] for k in ("model", "messages", "temperature", "max_tokens")}


def test_judge_dry_run_lists_what_a_real_run_sends(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "RED-ANSWER", "p2": "4", "p3": "leaves fall"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "BLUE-ANSWER", "p2": "5", "p3": "snow"})
    judge = {"template": "lima_3way.txt", "parser": "lima_3way", "system_prompt": "Be fair."}

    dry = _yaml(
        tmp_path / "dry.yaml", {"endpoint": _endpoint(CLOSED, api_key_env="NO_SUCH_KEY_VAR"), **judge}
    )
    result = cli("judge", str(dry), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "dry"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: 6 requests" in result.stdout and "no prices in the endpoint config" in result.stdout
    assert sorted((tmp_path / "dry").iterdir()) == [tmp_path / "dry" / "requests.jsonl"]  # nothing else
    listed = _lines(tmp_path / "dry" / "requests.jsonl")
    assert [(r["prompt_id"], r["order"]) for r in listed] == [
        (p, o) for p in ("p1", "p2", "p3") for o in ("AB", "BA")
    ]
    ab, ba = listed[0]["messages"], listed[1]["messages"]
    assert ab[0] == {"role": "system", "content": "Be fair."}

    def a_first(messages: list[dict]) -> bool:
        return messages[1]["content"].index("RED-ANSWER") < messages[1]["content"].index("BLUE-ANSWER")

    assert a_first(ab) and not a_first(ba)  # A's answer shown first, then swapped

    # The same judge for real: the server receives exactly the listed bodies, and caches them under the
    # listed keys.
    with FakeOpenAI(reply=lambda body: "Answer A is significantly better") as fake:
        real = _yaml(tmp_path / "real.yaml", {"endpoint": _endpoint(fake.base_url), **judge})
        result = cli("judge", str(real), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "real"))
        assert result.returncode == 0, result.stderr
        received = fake.requests
    assert sorted(map(json.dumps, map(_sent, received))) == sorted(
        json.dumps({**_sent(r), "model": "judge-x"}) for r in listed
    )


def test_grade_dry_run_lists_each_sample_with_its_seed_and_cost(tmp_path, cli):
    gen = _gen(tmp_path / "g.jsonl", "ours", {"p1": "red", "p2": "4"})
    priced = _endpoint(
        CLOSED, price_per_million_input_tokens=2.0, price_per_million_output_tokens=8.0, model="grader-y"
    )
    config = _yaml(
        tmp_path / "grade.yaml", {"endpoint": priced, "scale": "likert", "samples": 3, "max_tokens": 100}
    )
    result = cli("grade", str(config), "--gen", str(gen), "--out", str(tmp_path / "out"), "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = _lines(tmp_path / "out" / "requests.jsonl")
    assert [(r["prompt_id"], r["sample"], r["grade"]) for r in listed] == [
        (p, 0, g) for p in ("p1", "p2") for g in range(3)
    ]
    assert len({r["seed"] for r in listed if r["prompt_id"] == "p1"}) == 3  # each grade its own draw
    assert all(r["model"] == "grader-y" and r["max_tokens"] == 100 for r in listed)
    prompt_tokens = sum(r["prompt_tokens_estimate"] for r in listed)
    assert f"about {prompt_tokens:,}" in result.stdout and "at most 600 (max_tokens" in result.stdout
    cost = prompt_tokens * 2.0 / 1e6 + 600 * 8.0 / 1e6
    assert f"at most ${cost:.4f}" in result.stdout


def test_panel_dry_run_contacts_no_member(tmp_path, cli):
    a = _gen(tmp_path / "a.jsonl", "ours", {"p1": "red"})
    b = _gen(tmp_path / "b.jsonl", "base", {"p1": "blue"})
    member = {"template": "lima_3way.txt", "parser": "lima_3way"}
    panel = {
        "panel": {
            "judges": [
                {"endpoint": _endpoint(CLOSED, model="m1"), **member},
                {"endpoint": _endpoint("http://127.0.0.1:8/v1", model="m2"), **member},
            ]
        }
    }
    config = _yaml(tmp_path / "panel.yaml", panel)
    result = cli(
        "judge", str(config), "--a", str(a), "--b", str(b), "--out", str(tmp_path / "o"), "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    listed = _lines(tmp_path / "o" / "requests.jsonl")
    assert sorted((r["model"], r["base_url"], r["order"]) for r in listed) == [
        ("m1", CLOSED, "AB"),
        ("m1", CLOSED, "BA"),
        ("m2", "http://127.0.0.1:8/v1", "AB"),
        ("m2", "http://127.0.0.1:8/v1", "BA"),
    ]


def test_about_is_not_part_of_the_cache_key():
    endpoint = EndpointConfig(base_url=CLOSED, model="m")
    messages = [{"role": "user", "content": "hi"}]
    plain = ChatRequest("k", messages)
    labelled = ChatRequest("k", messages, about={"prompt_id": "p1", "order": "AB"})
    assert request_key(endpoint, plain) == request_key(endpoint, labelled)
    recorder = DryRunClient(endpoint)
    [result] = recorder.complete_many([labelled])
    assert result.error and result.text is None  # an engine sees a failed request: no re-ask
    assert recorder.lines()[0]["cache_key"] == request_key(endpoint, plain)
    assert estimate_tokens(messages) == 1 + 4
