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
