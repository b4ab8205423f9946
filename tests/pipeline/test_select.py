"""Checkpoint selection rules, with generation and judging stubbed (the real ones run in test_run.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lima.core.errors import LimaError
from lima.pipeline.config import SelectConfig
from lima.pipeline.select import select_checkpoint


def _checkpoints(tmp_path: Path, dev_losses: list[float | None]) -> list[Path]:
    paths = []
    for epoch, loss in enumerate(dev_losses, start=1):
        path = tmp_path / f"epoch-{epoch}"
        path.mkdir()
        (path / "lima_checkpoint.json").write_text(json.dumps({"epoch": epoch, "dev_loss": loss}))
        paths.append(path)
    return paths


@pytest.fixture
def stub_eval(monkeypatch):
    """Generations are named after the checkpoint; the judge's win rate (percent) comes from a table."""
    import lima.eval.generate
    import lima.eval.judge

    win_rates: dict[tuple[str, str], float] = {}
    calls: list[tuple[str, str]] = []

    def generate(config, out_path, model=None, prompts=None, limit=None):
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps({"model": Path(model).name}) + "\n")
        return out_path

    def judge(config, gen_a, gen_b, out_dir, limit=None):
        pair = (gen_a.stem, gen_b.stem)
        calls.append(pair)
        return {"win_rate": win_rates[pair], "wins": 0, "ties": 0, "losses": 0}

    monkeypatch.setattr(lima.eval.generate, "run_generation", generate)
    monkeypatch.setattr(lima.eval.judge, "run_judging", judge)
    return win_rates, calls


def test_judge_ladder_keeps_incumbent_on_ties_and_takes_a_real_winner(tmp_path, stub_eval):
    win_rates, calls = stub_eval
    win_rates[("epoch-2", "epoch-1")] = 50.0  # all ties: not better
    win_rates[("epoch-3", "epoch-1")] = 75.0
    win_rates[("epoch-4", "epoch-3")] = 40.0
    ckpts = _checkpoints(tmp_path, [3.0, 2.9, 2.95, 2.8])
    dev = tmp_path / "dev.jsonl"
    dev.write_text("")
    result = select_checkpoint(SelectConfig(strategy="judge"), ckpts, dev, None, None, tmp_path / "sel")
    assert calls == [("epoch-2", "epoch-1"), ("epoch-3", "epoch-1"), ("epoch-4", "epoch-3")]
    assert result["selected_epoch"] == 3 and result["strategy"] == "judge"
    assert [row["selected"] for row in result["table"]] == [False, False, True, False]


def test_epoch_range_dev_loss_and_last(tmp_path):
    ckpts = _checkpoints(tmp_path, [3.0, 2.5, 2.7, 2.6])
    dev = tmp_path / "dev.jsonl"
    dev.write_text("")
    by_loss = select_checkpoint(
        SelectConfig(strategy="dev_loss", min_epoch=3), ckpts, dev, None, None, tmp_path
    )
    assert by_loss["selected_epoch"] == 4  # epoch 2 has the lowest loss but lies outside the range
    last = select_checkpoint(SelectConfig(strategy="last", max_epoch=3), ckpts, dev, None, None, tmp_path)
    assert last["selected_epoch"] == 3
    # a range beyond the epochs trained falls back to all of them
    late = select_checkpoint(SelectConfig(strategy="dev_loss", min_epoch=5), ckpts, dev, None, None, tmp_path)
    assert late["selected_epoch"] == 2


def test_judge_without_dev_set_falls_back_and_says_so(tmp_path):
    ckpts = _checkpoints(tmp_path, [None, None])
    result = select_checkpoint(SelectConfig(strategy="judge"), ckpts, None, None, None, tmp_path)
    assert result["strategy"] == "last" and result["note"] == "no dev set" and result["selected_epoch"] == 2
    with pytest.raises(LimaError, match="needs a dev set"):
        select_checkpoint(SelectConfig(strategy="dev_loss"), ckpts, None, None, None, tmp_path)


def test_lima_run_prints_the_judges_agreement_beside_each_win_rate(monkeypatch, capsys):
    from types import SimpleNamespace

    import lima.pipeline.run
    from lima.pipeline import commands

    sentence = "judge agreement 62% [46%–79%] on 24 labelled pairs, chance 58%: cannot separate the answers"
    result = SimpleNamespace(
        judgments={
            "base": {"win_rate": 58.3, "ci95": [37.5, 79.2], "errors": 0, "judge_agreement": sentence}
        },
        report_html="runs/demo/report.html",
    )
    monkeypatch.setattr(lima.pipeline.run, "run_experiment", lambda *a, **k: result)
    commands.run(Path("configs/experiments/demo.yaml"), [], None)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "model vs base: win rate 58.3% (95% CI 37.5–79.2), 0 judge errors"
    assert out[1].strip() == sentence
