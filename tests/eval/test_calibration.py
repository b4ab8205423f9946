"""Calibration that travels with the judge: the shipped pair set, the agreement block (CI, chance), the
per-judge store, and the `calibration` block in every `lima judge` summary and report."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from lima.core.errors import LimaError
from lima.eval.calibrate import (
    calibration_block,
    calibration_note,
    chance_levels,
    read_labelled_pairs,
)
from lima.eval.records import PairItem
from tests.conftest import ROOT
from tests.eval.fake_openai import FakeOpenAI

PAIRS = ROOT / "data" / "judge_pairs.jsonl"


def test_shipped_pairs_are_balanced_and_readable():
    items, skipped = read_labelled_pairs(PAIRS, "lima")
    assert 40 <= len(items) <= 60 and skipped == 0
    assert len({i.id for i in items}) == len(items)
    golds = Counter(i.meta["gold"] for i in items)
    assert golds["tie"] >= 5 and abs(golds["A"] - golds["B"]) <= 2  # the better answer in both positions
    by_category = Counter((i.meta["category"], i.meta["gold"]) for i in items)
    for category in ("correctness", "instruction", "helpfulness"):
        assert by_category[category, "A"] >= 3 and by_category[category, "B"] >= 3


def test_lima_format_values_and_bad_label(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": "q1", "answer_1": "x", "answer_2": "y", "label": 2, "category": "c"},
        {"prompt": "q2", "answer_1": "x", "answer_2": "y", "label": 0},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items, _ = read_labelled_pairs(path, "lima")
    assert [(i.meta["gold"], i.meta["category"]) for i in items] == [("B", "c"), ("tie", None)]
    path.write_text(json.dumps({**rows[0], "label": 3}) + "\n")
    with pytest.raises(LimaError, match=r"row 1: .*expected label 1, 2 or 0 \(tie\)"):
        read_labelled_pairs(path, "lima")


def test_non_utf8_labels_file_is_one_line(tmp_path, cli):
    path = tmp_path / "labels.json"
    path.write_bytes(
        '[{"input": "caf\u00e9", "output_1": "a", "output_2": "b", "label": 1}]'.encode("latin-1")
    )
    with pytest.raises(LimaError, match=r"labels.json: not UTF-8 text \(byte 0xe9 at offset 15\); re-save"):
        read_labelled_pairs(path, "llmbar")
    result = cli("calibrate", "configs/judge/embedded_lima.yaml", "--labels", str(path), "--format", "llmbar")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "labels.json: not UTF-8 text" in result.stderr and "as UTF-8" in result.stderr


def test_labels_file_with_bom_reads(tmp_path):
    path = tmp_path / "labels.json"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps([{"input": "q", "output_1": "a", "output_2": "b", "label": 1}]).encode()
    )
    items, _ = read_labelled_pairs(path, "llmbar")
    assert items[0].meta["gold"] == "A"


def test_chance_is_the_best_answer_blind_verdict():
    # accuracy: the majority label; tie-discounted: "always A" 2.5/4, "always tie" (what a fully
    # position-biased judge gives once both orders are combined) 2.5/4, "always B" 1.5/4.
    assert chance_levels(["A", "A", "B", "tie"]) == {"accuracy": 0.5, "tie_discounted_accuracy": 0.625}
    assert chance_levels(["A", "B"]) == {"accuracy": 0.5, "tie_discounted_accuracy": 0.5}


def _items(golds):
    return [PairItem(str(i), f"q{i}", "a" * (i + 1), "b", {"gold": g}) for i, g in enumerate(golds)]


def _judgments(verdicts):
    return [
        {
            "verdict": v,
            "consistent": v != "tie" if v else None,
            "orders": [
                {"positional": {"A": "A", "B": "B"}.get(v, "A")},
                {"positional": {"A": "B", "B": "A"}.get(v, "A")},
            ],
        }
        for v in verdicts
    ]


def test_block_separates_only_when_the_ci_clears_chance():
    golds = ["A", "B"] * 20 + ["tie"] * 8
    perfect = calibration_block(_items(golds), _judgments(golds))
    assert (perfect["n"], perfect["accuracy"], perfect["tie_discounted_accuracy"]) == (48, 1.0, 1.0)
    assert (
        perfect["separates"]
        and perfect["ci95"]["tie_discounted_accuracy"][0] > perfect["chance"]["tie_discounted_accuracy"]
    )
    assert "above chance" in calibration_note({**perfect, "labels": {"name": "x"}})

    biased = calibration_block(_items(golds), _judgments(["tie"] * 48))  # always the first position
    assert (
        biased["tie_discounted_accuracy"]
        == biased["chance"]["tie_discounted_accuracy"]
        == pytest.approx((40 * 0.5 + 8) / 48, abs=1e-4)
    )
    assert not biased["separates"] and biased["position_consistency"] == 0.0
    assert biased["first_position_pick_pct"] == 100.0
    assert "cannot separate the answers" in calibration_note({**biased, "labels": {"name": "x"}})

    errors = calibration_block(_items(golds[:4]), _judgments([None] * 4))
    assert (errors["n"], errors["errors"], errors["separates"]) == (0, 4, False)
    assert "cannot separate" in calibration_note({**errors, "labels": {"name": "x"}})
    assert "uncalibrated" in calibration_note(None) and "lima calibrate" in calibration_note(None)


_GOLD = {r["prompt"]: r for r in map(json.loads, PAIRS.read_text(encoding="utf-8").splitlines())}


def _sections(body):
    text = body["messages"][-1]["content"]
    prompt = text.split("[Question]\n", 1)[1].split("\n\n[Answer A]\n", 1)[0]
    first = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]\n", 1)[0]
    return prompt, first


def _human_judge(body):
    """Says what the shipped labels say, in whichever order the answers are shown."""
    prompt, first = _sections(body)
    row = _GOLD[prompt]
    if row["label"] == 0:
        return "Neither is significantly better"
    better = row["answer_1"] if row["label"] == 1 else row["answer_2"]
    return "Answer A is significantly better" if first == better else "Answer B is significantly better"


def _first_position_judge(body):
    return "Answer A is significantly better"


def _write_judge(tmp_path, base_url, name="judge.yaml", **extra):
    config = tmp_path / name
    endpoint = {
        "base_url": base_url,
        "model": "fake",
        "api_key_env": None,
        "concurrency": 4,
        "max_retries": 1,
    }
    config.write_text(yaml.safe_dump({"endpoint": endpoint, "max_answer_chars": 100000, **extra}))
    return config


def _gens(tmp_path):
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.jsonl"
        rows = [
            {"prompt_id": f"p{i}", "prompt": f"Question {i}?", "model": name, "output": f"{name} answer {i}"}
            for i in range(3)
        ]
        path.write_text("".join(json.dumps({**r, "settings": {}}) + "\n" for r in rows))
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    ("judge", "separates", "phrase"),
    [(_human_judge, True, "above chance"), (_first_position_judge, False, "cannot separate the answers")],
)
def test_calibration_is_stored_per_judge_and_shown_by_lima_judge(tmp_path, cli, judge, separates, phrase):
    env = {"LIMA_CACHE_DIR": str(tmp_path / "cache")}
    gen_a, gen_b = _gens(tmp_path)

    def reply(body):  # one server (the endpoint is part of the judge's identity): calibration, then judging
        return judge(body) if _sections(body)[0] in _GOLD else "Answer A is significantly better"

    with FakeOpenAI(reply=reply) as fake:
        config = _write_judge(tmp_path, fake.base_url)
        result = cli(
            "calibrate", str(config), "--labels", str(PAIRS), "--format", "lima",
            "--out", str(tmp_path / "cal"), "--json", env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        stored = list((tmp_path / "cache" / "calibrations").glob("*.json"))
        assert [p.name for p in stored] == [f"{out['judge_hash']}.json"] and out["stored"] == str(stored[0])
        assert out["separates"] is separates and phrase in out["note"]

        result = cli(
            "judge", str(config), "--a", str(gen_a), "--b", str(gen_b), "--out", str(tmp_path / "j"), env=env
        )
        assert result.returncode == 0, result.stderr
        other = _write_judge(tmp_path, fake.base_url, "other.yaml", temperature=0.3)  # another judge
        result_other = cli(
            "judge", str(other), "--a", str(gen_a), "--b", str(gen_b), "--out", str(tmp_path / "j2"), env=env
        )
        assert result_other.returncode == 0, result_other.stderr
    summary = json.loads((tmp_path / "j" / "summary.json").read_text())
    block = summary["calibration"]
    for key in ("n", "accuracy", "tie_discounted_accuracy", "ci95", "chance", "labels"):
        assert key in block
    assert block["n"] == 48 and block["labels"]["name"] == "judge_pairs.jsonl"
    assert block["tie_discounted_accuracy"] == out["tie_discounted_accuracy"]
    assert block["position_consistency"] == out["position_consistency"]
    assert phrase in summary["judge_agreement"] and phrase in result.stdout
    assert phrase in (tmp_path / "j" / "report.html").read_text()

    uncalibrated = json.loads((tmp_path / "j2" / "summary.json").read_text())
    assert uncalibrated["calibration"] is None and "uncalibrated judge" in uncalibrated["judge_agreement"]
    assert "uncalibrated judge" in result_other.stdout


def test_run_calibrate_stage_skips_and_restores_the_store(tmp_path, monkeypatch):
    from lima.core.config import load_config
    from lima.eval.calibrate import find_calibration
    from lima.eval.config import JudgeConfig
    from lima.pipeline.config import CalibrateStage
    from lima.pipeline.run import calibrate_stage

    monkeypatch.setenv("LIMA_CACHE_DIR", str(tmp_path / "cache"))
    with FakeOpenAI(reply=_human_judge) as fake:
        judge = load_config(_write_judge(tmp_path, fake.base_url), JudgeConfig, [])
        stage = CalibrateStage(limit=10)
        skipped: list[str] = []
        first = calibrate_stage(stage, judge, tmp_path / "run", ROOT, skipped)
        assert first["n"] == 10 and len(fake.requests) == 20 and skipped == []
        for path in (tmp_path / "cache" / "calibrations").glob("*.json"):
            path.unlink()
        assert find_calibration(judge) is None
        again = calibrate_stage(stage, judge, tmp_path / "run", ROOT, skipped)
        assert skipped == ["calibrate"] and len(fake.requests) == 20
    assert again["tie_discounted_accuracy"] == first["tie_discounted_accuracy"]
    assert find_calibration(judge)["n"] == 10


def test_soft_preferences_are_calibrated_apart_from_verdicts():
    """A position-biased logprob judge: every verdict a tie, yet its order-averaged preference leans the
    humans' way on 3 of 4 decisive pairs — the note sends the reader to the soft win rate."""
    golds = ["A", "B"] * 20 + ["tie"] * 4
    judgments = _judgments(["tie"] * len(golds))
    for i, (judgment, gold) in enumerate(zip(judgments, golds, strict=True)):
        for_gold = 0.6 if i % 4 != 3 else 0.4  # 0.6 toward the humans' choice, except on every fourth pair
        judgment["preference"] = 0.5 if gold == "tie" else for_gold if gold == "A" else 1 - for_gold
    block = calibration_block(_items(golds), judgments, soft=True)
    assert not block["separates"]
    soft = block["soft"]
    assert (soft["n"], soft["agreement"], soft["chance"]) == (40, 0.75, 0.5)
    assert soft["separates"] and soft["ci95"][0] > 0.5
    assert soft["mean_preference_for_human_choice"] == pytest.approx(0.55)
    note = calibration_note({**block, "labels": {"name": "x"}})
    assert "sides with the humans on 75% of 40 decisive pairs" in note and "read the soft win rate" in note
    assert "soft" not in calibration_block(_items(golds), judgments)  # a text judge has no soft block


def test_unwritable_store_keeps_the_calibration(tmp_path, monkeypatch):
    from lima.core.config import load_config
    from lima.eval.calibrate import run_calibration
    from lima.eval.config import JudgeConfig

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("LIMA_CACHE_DIR", str(blocker))  # calibrations/ cannot be created under a file
    with FakeOpenAI(reply=_human_judge) as fake:
        judge = load_config(_write_judge(tmp_path, fake.base_url), JudgeConfig, [])
        result = run_calibration(judge, PAIRS, "lima", tmp_path / "cal", limit=4)
    assert result["stored"] is None and "set LIMA_CACHE_DIR" in result["store_error"]
    assert json.loads((tmp_path / "cal" / "calibration.json").read_text())["n"] == 4


def test_tie_margin_of_a_soft_judge_is_part_of_its_verdict_settings():
    """tie_margin changes a logprob judge's verdicts without changing one reply: calibrations made with
    different margins must not be taken for each other."""
    from lima.eval.calibrate import _verdict_settings
    from lima.eval.config import JudgeConfig

    soft = JudgeConfig(verdict="logprobs", server="llamacpp", template="pairwise_logprobs.txt")
    assert _verdict_settings(soft) != _verdict_settings(soft.model_copy(update={"tie_margin": 0.1}))
    text = JudgeConfig()
    assert "tie_margin" not in _verdict_settings(text)
