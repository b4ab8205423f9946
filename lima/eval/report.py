"""LIMA's stacked win/tie/loss bar chart, the Fail/Pass/Excellent bar of the absolute analysis, and a
self-contained HTML judge report (all text HTML-escaped) that says how far the judge can be trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lima.core.html import esc, png_img
from lima.core.io import atomic_open

COLORS = {"win": "#2e7d32", "tie": "#bdbdbd", "loss": "#c62828"}
ABSOLUTE_COLORS = {"excellent": "#2e7d32", "pass": "#90caf9", "fail": "#c62828"}


def winrate_chart(summaries: dict[str, dict[str, Any]], path: Path, model: str | None = None) -> Path:
    """One horizontal bar per baseline: wins / ties / losses of ``model`` in percent (LIMA, Figure 1).

    ``summaries`` maps a baseline's name to a judge summary (``win_pct``, ``tie_pct``, ``loss_pct``).
    """
    subject = model or "model"
    parts = (
        ("win_pct", f"{subject} wins", COLORS["win"], "white"),
        ("tie_pct", "tie", COLORS["tie"], "black"),
        ("loss_pct", f"{subject} loses", COLORS["loss"], "white"),
    )
    return _stacked_bars(summaries, parts, path, "% of prompts")


def _stacked_bars(
    summaries: dict[str, dict[str, Any]],
    parts: tuple[tuple[str, str, str, str], ...],
    path: Path,
    xlabel: str,
) -> Path:
    """Horizontal stacked percentage bars, one per summary; ``parts`` are (key, legend, colour, text colour)
    and a segment of at least 6% is labelled with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summaries)
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.4), dpi=120)
    left = [0.0] * len(names)
    for key, label, color, text_color in parts:
        values = [float(summaries[n].get(key) or 0.0) for n in names]
        bars = ax.barh(names, values, left=left, color=color, label=label, edgecolor="white")
        for bar, value in zip(bars, values, strict=True):
            if value >= 6:
                ax.text(
                    bar.get_x() + bar.get_width() / 2,
                    bar.get_y() + bar.get_height() / 2,
                    f"{value:.0f}%",
                    ha="center",
                    va="center",
                    color=text_color,
                    fontsize=9,
                )
        left = [a + b for a, b in zip(left, values, strict=True)]
    return _finish(fig, ax, path, xlabel)


def _finish(fig: Any, ax: Any, path: Path, xlabel: str) -> Path:
    import matplotlib.pyplot as plt

    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.invert_yaxis()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path


def absolute_chart(summaries: dict[str, dict[str, Any]], path: Path) -> Path:
    """One stacked bar per model: Excellent / Pass / Fail in percent of parsed responses (LIMA, Figure 3).

    ``summaries`` maps a model's name to an absolute grade summary (``excellent_pct``, ``pass_pct``,
    ``fail_pct``)."""
    parts = tuple(
        (f"{label}_pct", label.capitalize(), ABSOLUTE_COLORS[label], "black" if label == "pass" else "white")
        for label in ("excellent", "pass", "fail")
    )
    return _stacked_bars(summaries, parts, path, "% of graded responses")


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
pre{white-space:pre-wrap;max-height:20em;overflow:auto;background:#f7f7f7;padding:6px;margin:0}
.err{color:#c62828}.warn{background:#fff3e0;border-left:4px solid #e65100;padding:6px 10px}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:6px 10px}"""


# The summary fields shown for a pairwise judgment, in the CLI and the HTML report.
SUMMARY_KEYS = (
    "model_a", "model_b", "n", "errors", "win_pct", "tie_pct", "loss_pct", "win_rate", "ci95",
    "soft_win_rate", "judge_agreement", "length_adjusted_win_rate", "position_consistency", "mean_len_a", "mean_len_b",
)  # fmt: skip


def calibration_html(summary: dict[str, Any]) -> str:
    """The judge's agreement with humans as one highlighted paragraph: green when its CI clears chance,
    orange when the judge is uncalibrated or cannot separate the answers."""
    from lima.eval.calibration import calibration_note

    block = summary.get("calibration")
    note = summary.get("judge_agreement") or calibration_note(block)
    css = "ok" if block and block.get("separates") else "warn"
    return f"<p class={css}><b>Judge:</b> {esc(note)}</p>"


def _shown(value: Any) -> Any:
    """Summaries keep full precision (they must equal other tools' numbers); people read two decimals."""
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def write_judge_report(
    summary: dict[str, Any], judgments: list[dict[str, Any]], path: Path, chart: Path
) -> Path:
    """A single HTML file: summary table, the chart, and every judgment with both raw judge replies."""
    keys = (
        *(k for k in SUMMARY_KEYS if k != "judge_agreement"),
        "first_position_pick_pct",
        "judge",
        "template",
    )
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(_shown(summary.get(k)))}</td></tr>" for k in keys if k in summary
    )
    items = []
    for j in judgments:
        replies = "".join(
            f"<p><b>order {esc(o['order'])}</b>: verdict {esc(o['verdict'])} "
            f"{'<span class=err>' + esc(o['error']) + '</span>' if o['error'] else ''}</p><pre>{esc(o['raw'])}</pre>"
            for o in j["orders"]
        )
        verdict = esc(j["verdict"]) if j["verdict"] else f"<span class=err>error: {esc(j['error'])}</span>"
        items.append(
            f"<tr><td>{esc(j['prompt_id'])}</td><td>{verdict}</td><td><pre>{esc(j['prompt'])}</pre></td>"
            f"<td><pre>{esc(j['output_a'])}</pre></td><td><pre>{esc(j['output_b'])}</pre></td>"
            f"<td><details><summary>judge replies</summary>{replies}</details></td></tr>"
        )
    title = f"{summary.get('model_a')} vs {summary.get('model_b')}"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_STYLE}</style>"
        f"</head><body><h1>{esc(title)}</h1>{calibration_html(summary)}<table>{rows}</table>{png_img(chart, 'win/tie/loss chart')}<h2>Judgments</h2><table>"
        f"<tr><th>id</th><th>verdict (A = {esc(summary.get('model_a'))})</th><th>prompt</th><th>A</th><th>B</th>"
        f"<th>judge</th></tr>{''.join(items)}</table></body></html>\n"
    )
    with atomic_open(path) as fh:
        fh.write(page)
    return path
