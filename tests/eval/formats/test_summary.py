"""`lima summarize`: one-line errors for bad files, --baseline orientation, and `lima judge` writing the keys."""

from __future__ import annotations

import json

import pandas as pd

from lima.eval.summary import outcome_keys


def test_bad_judgment_files_are_one_line(tmp_path, cli):
    bad = tmp_path / "j.jsonl"
    bad.write_text('{"verdict": "A"}\n{"verdict": "maybe"}\n')
    result = cli("summarize", str(bad))
    assert (
        result.returncode == 2
        and "j.jsonl:2: verdict: 'maybe' is not one of A, B, tie, null" in result.stderr
    )
    bad.write_text('{"g1_winner": "model_1"}\n')
    result = cli("summarize", str(bad))
    assert result.returncode == 2 and "convert other tools' files with `lima import`" in result.stderr
    bad.write_text('{"verdict": "A", "preference": 1.7}\n')
    assert "preference: 1.7 is not a number in [0, 1]" in cli("summarize", str(bad)).stderr
    assert "Traceback" not in result.stderr


def test_baseline_orients_and_flips_soft_preferences(tmp_path, cli):
    rows = [
        {"model_a": "m", "model_b": "base", "verdict": "A", "preference": 0.8},
        {"model_a": "base", "model_b": "m", "verdict": "A", "preference": 0.9},  # base won: a loss for m
        {"model_a": "m", "model_b": "other", "verdict": "B", "preference": 0.1},
    ]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = json.loads(cli("summarize", str(path), "--baseline", "base", "--json").stdout)
    assert (summary["model_a"], summary["n"], summary["wins"], summary["losses"]) == ("m", 2, 1, 1)
    assert abs(summary["soft_win_rate"] - 100 * (0.8 + 0.1) / 2) < 1e-9
    assert cli("summarize", str(path), "--baseline", "nobody").returncode == 2


def test_outcome_keys_without_soft_preferences():
    keys = outcome_keys(["A", "A", "B", "tie"])
    assert (keys["n"], keys["wins"], keys["ties"], keys["losses"], keys["win_rate"]) == (4, 2, 1, 1, 62.5)
    # scores 1 1 0 .5: mean .625, Σ dev² = .140625·2 + .390625 + .015625 = .6875, var .229167
    assert abs(keys["standard_error"] - 100 * (0.6875 / 3) ** 0.5 / 2) < 1e-9
    assert keys["soft_win_rate"] is None and outcome_keys([])["standard_error"] is None


def test_lima_judge_writes_the_same_keys_as_summarize(tmp_path, cli):

    from tests.eval.fake_openai import FakeOpenAI, judge_config

    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(
                json.dumps(
                    {"prompt_id": f"p{k}", "prompt": f"q{k}", "model": name, "output": f"{name} says {k}"}
                )
                + "\n"
                for k in range(3)
            )
        )
    with FakeOpenAI(reply=lambda body: "Answer A is significantly better") as fake:  # always the first shown
        config = judge_config(tmp_path / "judge.yaml", fake, template="lima_3way.txt", parser="lima_3way")
        out = tmp_path / "run"
        result = cli(
            "judge",
            str(config),
            "--a",
            str(tmp_path / "a.jsonl"),
            "--b",
            str(tmp_path / "b.jsonl"),
            "--out",
            str(out),
        )
        assert result.returncode == 0, result.stderr
    written = json.loads((out / "summary.json").read_text())
    again = json.loads(cli("summarize", str(out / "judgments.jsonl"), "--json").stdout)
    for key in ("n", "wins", "ties", "losses", "win_rate", "standard_error", "ci95"):
        assert written[key] == again[key], key
    assert (written["ties"], written["standard_error"]) == (3, 0.0)  # position bias: every pair a tie


def test_win_rate_is_unrounded_as_the_leaderboards_print_it():
    # AlpacaEval's discrete_win_rate and FastChat's win_rate_adjusted carry every digit: (2 + ½) / 3 of them,
    # pandas' mean of the scores 1 1 .5, is 83.33333333333334, not 83.33
    keys = outcome_keys(["A", "A", "tie"])
    assert keys["win_rate"] == pd.Series([1.0, 1.0, 0.5]).mean() * 100
