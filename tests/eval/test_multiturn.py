"""LIMA's dialogue evaluation: generation continues a multi-turn conversation and the judge sees it."""

from __future__ import annotations

import json

from lima.core.record import Example, write_records
from tests.conftest import ROOT
from tests.eval.fake_openai import FakeOpenAI

DIALOGUE = [
    {"role": "user", "content": "I want to brew beer at home. Where do I start?"},
    {
        "role": "assistant",
        "content": "Start with a malt-extract kit: it needs only a pot, a fermenter and a bottle.",
    },
    {"role": "user", "content": "How long does the fermentation take?"},
]


def test_multi_turn_generation_and_judging(tmp_path, tiny_model_dir, cli):
    prompts = tmp_path / "dialogues.jsonl"
    write_records(
        prompts,
        [
            Example(id="dialogue-1", source="manual", messages=DIALOGUE),
            Example(
                id="single-1", source="manual", messages=[{"role": "user", "content": "What is a lager?"}]
            ),
        ],
    )
    gens = {}
    for name, seed in (("a", 1), ("b", 2)):
        gens[name] = tmp_path / f"{name}.jsonl"
        result = cli(
            "generate",
            str(ROOT / "configs/generate/demo.yaml"),
            "decoding.max_new_tokens=6",
            f"decoding.seed={seed}",
            "--model",
            str(tiny_model_dir),
            "--prompts",
            str(prompts),
            "--out",
            str(gens[name]),
        )
        assert result.returncode == 0, result.stderr[-2000:]
    records = {r["prompt_id"]: r for r in map(json.loads, gens["a"].read_text().splitlines())}
    assert records["dialogue-1"]["prompt"] == DIALOGUE[-1]["content"]
    assert records["dialogue-1"]["history"] == DIALOGUE[:-1]
    assert "history" not in records["single-1"]

    with FakeOpenAI(reply=lambda body: "Neither is significantly better") as judge:
        result = cli(
            "judge",
            str(ROOT / "configs/judge/embedded_lima.yaml"),
            f"endpoint.base_url={judge.base_url}",
            "endpoint.model=stub",
            "--a",
            str(gens["a"]),
            "--b",
            str(gens["b"]),
            "--out",
            str(tmp_path / "j"),
        )
        assert result.returncode == 0, result.stderr[-2000:]
        shown = [body["messages"][-1]["content"] for body in judge.requests]
    assert len(shown) == 4  # two prompts, both orders
    dialogue = [text for text in shown if "How long does the fermentation take?" in text]
    assert len(dialogue) == 2
    for text in dialogue:  # the judge sees the whole conversation, not only the last turn
        assert (
            "[Conversation so far]" in text
            and DIALOGUE[1]["content"] in text
            and DIALOGUE[0]["content"] in text
        )
    assert not any("[Conversation so far]" in text for text in shown if "What is a lager?" in text)
