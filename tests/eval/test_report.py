"""LIMA's stacked win/tie/loss chart (one bar per baseline) and HTML escaping."""

from __future__ import annotations

from lima.eval.report import esc, winrate_chart


def test_winrate_chart_one_bar_per_baseline(tmp_path):
    summaries = {
        "Alpaca 65B": {"win_pct": 53.0, "tie_pct": 26.0, "loss_pct": 21.0},
        "DaVinci003": {"win_pct": 44.0, "tie_pct": 21.0, "loss_pct": 35.0},
        "GPT-4": {"win_pct": 18.0, "tie_pct": 25.0, "loss_pct": 57.0},
    }
    path = winrate_chart(summaries, tmp_path / "chart.png", model="LIMA")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_esc():
    assert esc('<a href="x">&</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
    assert esc(None) == ""


def _block(separates: bool) -> dict:
    return {
        "n": 48,
        "errors": 0,
        "accuracy": 0.9 if separates else 0.17,
        "tie_discounted_accuracy": 0.93 if separates else 0.58,
        "ci95": {
            "accuracy": [0.8, 0.97],
            "tie_discounted_accuracy": [0.86, 0.98] if separates else [0.5, 0.66],
        },
        "chance": {"accuracy": 0.42, "tie_discounted_accuracy": 0.58},
        "separates": separates,
        "below_chance": False,
        "labels": {"name": "judge_pairs.jsonl"},
    }


def test_judge_report_says_how_far_the_judge_can_be_trusted(tmp_path):
    from lima.eval.calibrate import calibration_note
    from lima.eval.report import write_judge_report

    chart = winrate_chart({"b": {"win_pct": 50.0, "tie_pct": 0.0, "loss_pct": 50.0}}, tmp_path / "c.png")
    for block, phrase, css in (
        (None, "uncalibrated judge", "warn"),
        (_block(False), "cannot separate the answers", "warn"),
        (_block(True), "above chance", "ok"),
    ):
        summary = {
            "model_a": "a",
            "model_b": "b",
            "calibration": block,
            "judge_agreement": calibration_note(block),
        }
        html = write_judge_report(summary, [], tmp_path / "r.html", chart).read_text()
        assert f"<p class={css}><b>Judge:</b>" in html and phrase in html
    assert "86%–98%" in html and "chance 58%" in html


def test_run_report_agreement_beside_win_rates_and_absolute_bars(tmp_path):
    from types import SimpleNamespace

    from lima.pipeline.report import write_run_report

    judge = {
        "n": 12,
        "win_pct": 25.0,
        "tie_pct": 50.0,
        "loss_pct": 25.0,
        "win_rate": 50.0,
        "ci95": [35.0, 65.0],
    }
    result = SimpleNamespace(
        out_dir=tmp_path,
        selection={"strategy": "judge", "table": [{"epoch": 1, "win_rate": 50.0, "selected": True}]},
        judgments={"base": {**judge, "calibration": None}},
        grades={
            "model": {
                "scale": "absolute",
                "excellent_pct": 25.0,
                "pass_pct": 50.0,
                "fail_pct": 25.0,
                "counts": {"fail": 3, "pass": 6, "excellent": 3},
                "responses": 12,
                "errors": 0,
            },
        },
        generations={},
        calibration={**_block(False), "agreement": {}, "note": "…", "client": {}},
    )
    html = write_run_report(result, SimpleNamespace(name="demo", report_samples=0)).read_text()
    md = (tmp_path / "report.md").read_text()
    # The calibrate stage's block wins over the (uncalibrated) summary: agreement, CI and chance per row.
    assert "judge agreement (95% CI)" in html and "58% [50%–66%] on 48" in html and "<td>58%</td>" in html
    assert html.count("cannot separate the answers") == 2  # under the selection table and the judgments
    assert "| 58% [50%–66%] on 48 | 58% |" in md
    assert "Absolute analysis: Fail / Pass / Excellent" in html and (tmp_path / "absolute.png").is_file()
    assert "| model | 12 | 25.000 | 50.000 | 25.000 | 0 |" in md
