"""`lima grade` and `lima calibrate` against a fake endpoint; label-format readers on real and small files."""

from __future__ import annotations

import json

import pytest
import yaml

from lima.core.errors import LimaError
from lima.eval.calibrate import read_labelled_pairs
from tests.eval.fake_openai import FakeOpenAI


def _endpoint(base_url: str) -> dict:
    return {"base_url": base_url, "model": "fake", "api_key_env": None, "concurrency": 4, "max_retries": 1}


def test_grade_k_samples_mean_and_ci(tmp_path, cli):
    gen = tmp_path / "gen.jsonl"
    outputs = {"p1": "a great answer", "p2": "a poor answer", "p3": "unclear"}
    gen.write_text(
        "".join(
            json.dumps({"prompt_id": k, "prompt": f"question {k}", "model": "m", "output": v, "settings": {}})
            + "\n"
            for k, v in outputs.items()
        )
    )

    def reply(body):
        text = body["messages"][-1]["content"]
        return "Score: 6" if "great" in text else "Score: 2" if "poor" in text else "no idea"

    with FakeOpenAI(reply=reply) as fake:
        config = tmp_path / "grade.yaml"
        config.write_text(yaml.safe_dump({"endpoint": _endpoint(fake.base_url), "parse_retries": 1}))
        result = cli("grade", str(config), "--gen", str(gen), "--samples", "3", "--out", str(tmp_path / "g"))
        assert result.returncode == 0, result.stderr
        assert len(fake.requests) == 3 * 3 + 3  # p3's three samples are re-asked once
        seeds = {b["seed"] for b in fake.requests[:9]}
        assert len(seeds) == 3  # distinct samples
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert (summary["n"], summary["errors"], summary["samples"], summary["mean"]) == (2, 1, 3, 4.0)
    assert summary["ci95"] == [2.0, 6.0] and summary["histogram"] == {"2": 3, "6": 3}
    rows = [json.loads(line) for line in (tmp_path / "g" / "scores.jsonl").read_text().splitlines()]
    assert rows[2]["score"] is None and rows[2]["errors"] == 3


def _longer_first(body):
    """Picks the longer answer, whatever its position: a perfectly consistent, length-biased judge."""
    text = body["messages"][-1]["content"]
    first = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]\n", 1)
    second = first[1].split("\n\nJudge helpfulness", 1)[0]
    return (
        "Answer A is significantly better"
        if len(first[0]) > len(second)
        else "Answer B is significantly better"
    )


def test_calibrate_llmbar_json(shared_data, tmp_path, cli):
    labels = shared_data / "preferences" / "llmbar_natural.json"
    rows = json.loads(labels.read_text())[:8]
    longer = ["A" if len(r["output_1"]) > len(r["output_2"]) else "B" for r in rows]
    gold = ["A" if r["label"] == 1 else "B" for r in rows]
    with FakeOpenAI(reply=_longer_first) as fake:
        config = tmp_path / "judge.yaml"
        config.write_text(yaml.safe_dump({"endpoint": _endpoint(fake.base_url), "max_answer_chars": 100000}))
        result = cli(
            "calibrate",
            str(config),
            "--labels",
            str(labels),
            "--format",
            "llmbar",
            "--limit",
            "8",
            "--out",
            str(tmp_path / "cal"),
            "--json",
            env={"LIMA_CACHE_DIR": str(tmp_path / "cache")},
        )
        assert result.returncode == 0, result.stderr
        assert len(fake.requests) == 16
    out = json.loads(result.stdout)
    agree = sum(p == g for p, g in zip(longer, gold, strict=True))
    assert (out["n"], out["errors"]) == (8, 0)
    assert out["accuracy"] == pytest.approx(agree / 8, abs=1e-4)
    assert out["tie_discounted_accuracy"] == pytest.approx(agree / 8, abs=1e-4)
    assert out["position_consistency"] == 100.0 and out["longer_wins_pct_judge"] == 100.0
    assert out["longer_wins_pct_human"] == pytest.approx(round(100 * agree / 8, 2))
    for name in ("predictions.jsonl", "gold.jsonl", "judgments.jsonl", "calibration.json", "manifest.json"):
        assert (tmp_path / "cal" / name).is_file()


def test_label_formats(shared_data, tmp_path):
    pandalm, _ = read_labelled_pairs(shared_data / "preferences" / "pandalm_testset_v1.json", "pandalm")
    assert len(pandalm) == 999
    golds = [i.meta["gold"] for i in pandalm]
    assert (golds.count("A"), golds.count("B"), golds.count("tie")) == (422, 472, 105)

    autoj = tmp_path / "autoj.jsonl"
    autoj.write_text(
        "".join(
            json.dumps({"scenario": s, "label": lab, "prompt": "q", "response 1": "x", "response 2": "y"})
            + "\n"
            for s, lab in (("code", 0), ("chat", 2))
        )
    )
    items, _ = read_labelled_pairs(autoj, "autoj")
    assert [(i.meta["gold"], i.meta["category"]) for i in items] == [("A", "code"), ("tie", "chat")]

    def conv(answer):
        return [
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": answer + "!"},
        ]

    mtbench = tmp_path / "mt.jsonl"
    mtbench.write_text(
        "".join(
            json.dumps(
                {
                    "question_id": 81,
                    "model_a": "gpt-4",
                    "model_b": "vicuna",
                    "winner": w,
                    "judge": "expert_0",
                    "turn": t,
                    "conversation_a": conv("a"),
                    "conversation_b": conv("b"),
                }
            )
            + "\n"
            for w, t in (("model_a", 1), ("tie (bothbad)", 1), ("model_b", 2))
        )
    )
    items, skipped = read_labelled_pairs(mtbench, "mtbench")
    assert [i.meta["gold"] for i in items] == ["A", "tie"] and skipped == 1
    assert (items[0].prompt, items[0].answer_a, items[0].answer_b) == ("Q1", "a", "b")

    with pytest.raises(LimaError, match="it looks like --format llmbar"):
        read_labelled_pairs(shared_data / "preferences" / "llmbar_natural.json", "pandalm")


def test_calibrate_wrong_format_is_exit_2(shared_data, cli):
    result = cli(
        "calibrate",
        "configs/judge/embedded_lima.yaml",
        "--labels",
        str(shared_data / "preferences" / "pandalm_testset_v1.json"),
        "--format",
        "autoj",
    )
    assert result.returncode == 2 and "missing prompt, response 1, response 2, label" in result.stderr
    assert "looks like --format pandalm" in result.stderr and "Traceback" not in result.stderr
