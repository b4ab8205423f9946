"""The run report (report.html + report.md): data card, training curves, checkpoint selection, win/tie/loss
against each baseline with 95% CIs beside the judge's agreement with humans (its CI and the chance level),
Likert means, the Fail/Pass/Excellent bars of LIMA's absolute analysis, sample generations side by side, and
the manifest. Every piece of text that came from data or models is HTML-escaped."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from lima.core.html import png_img
from lima.core.io import atomic_open, read_jsonl_rows
from lima.core.manifest import read_manifest, redact
from lima.pipeline.changes import is_cut

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
pre{white-space:pre-wrap;background:#f6f6f6;padding:8px;max-height:30em;overflow:auto}
.side{display:grid;grid-template-columns:1fr 1fr;gap:8px}img{max-width:100%}
.warn{background:#fff3e0;border-left:4px solid #e65100;padding:6px 10px}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:6px 10px}"""


def training_curves(train_dir: Path, path: Path) -> Path | None:
    """Loss, dev loss and tokens/s over steps/epochs, from the trainer's logs."""
    log = read_jsonl_rows(train_dir / "train_log.jsonl")
    epochs = read_jsonl_rows(train_dir / "epochs.jsonl")
    if not log and not epochs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [r["step"] for r in log if r.get("loss") is not None]
    axes[0].plot(steps, [r["loss"] for r in log if r.get("loss") is not None], label="train loss")
    dev = [(r["epoch"], r["dev_loss"]) for r in epochs if r.get("dev_loss") is not None]
    if dev and log:
        max_step = max(steps) if steps else 1
        max_epoch = max(e for e, _ in dev)
        axes[0].plot(
            [e / max_epoch * max_step for e, _ in dev],
            [d for _, d in dev],
            "o-",
            label="dev loss (per epoch)",
        )
    axes[0].set_xlabel("step")
    axes[0].legend()
    speed = [(r["step"], r["tokens_per_s"]) for r in log if r.get("tokens_per_s")]
    axes[1].plot([s for s, _ in speed], [t for _, t in speed])
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("tokens/s")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _table_html(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _table_md(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append(
            "| " + " | ".join(_fmt(r.get(c)).replace("|", "\\|").replace("\n", " ") for c in columns) + " |"
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


def _agreement_cells(block: dict[str, Any] | None) -> dict[str, str]:
    """The judge's agreement with humans, for a row beside a win rate (tie-discounted accuracy, LIMA's)."""
    if not block:
        return {"judge agreement (95% CI)": "uncalibrated", "chance": ""}
    if not block.get("n"):
        return {"judge agreement (95% CI)": "no parsed verdict", "chance": ""}
    from lima.eval.calibrate import calibration_problem

    if (problem := calibration_problem(block)) is not None:
        return {"judge agreement (95% CI)": problem.split(" (", 1)[0] + f" (n={block['n']})", "chance": ""}
    low, high = block["ci95"]["tie_discounted_accuracy"]
    return {
        "judge agreement (95% CI)": f"{_pct(block['tie_discounted_accuracy'])} [{_pct(low)}–{_pct(high)}]"
        f" on {block['n']}",
        "chance": _pct(block["chance"]["tie_discounted_accuracy"]),
    }


def _judge_rows(
    judgments: dict[str, dict[str, Any]], calibration: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    rows = []
    for name, s in judgments.items():
        rows.append(
            {
                "baseline": name,
                "n": s.get("n"),
                "win %": s.get("win_pct"),
                "tie %": s.get("tie_pct"),
                "loss %": s.get("loss_pct"),
                "win rate": s.get("win_rate"),
                "95% CI": s.get("ci95"),
                **_agreement_cells(calibration or s.get("calibration")),
                # lc_win_rate: the old name, in summaries written before the rename
                "length-adj. win rate": s.get("length_adjusted_win_rate", s.get("lc_win_rate")),
                "errors": s.get("errors"),
            }
        )
    return rows


def _judge_note(block: dict[str, Any] | None) -> tuple[str, str]:
    """The plain-language verdict on the judge, as (html, markdown)."""
    from lima.eval.calibrate import calibration_note

    note = calibration_note(block)
    css = "ok" if block and block.get("separates") else "warn"
    return f"<p class={css}><b>Judge:</b> {escape(note)}</p>", f"> **Judge:** {note}"


def _grade_rows(grades: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "model": n,
            "prompts": g.get("n"),
            "responses / prompt": g.get("generation_samples"),
            "grades / response": g.get("grade_samples", g.get("samples")),
            "mean (1-6)": g.get("mean"),
            "95% CI": g.get("ci95"),
            "errors": g.get("errors"),
        }
        for n, g in grades.items()
    ]


def _absolute_rows(grades: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, g in grades.items():
        turns = g.get("by_turn") or {"all": g}
        for turn, t in turns.items():
            rows.append(
                {
                    "model": name,
                    **({"turn": turn} if "by_turn" in g else {}),
                    "responses": t.get("responses"),
                    "excellent %": t.get("excellent_pct"),
                    "pass %": t.get("pass_pct"),
                    "fail %": t.get("fail_pct"),
                    "errors": t.get("errors"),
                }
            )
    return rows


def _sample_label(name: str, record: dict[str, Any]) -> str:
    """The model's name, marked when its answer was cut at the token limit rather than ending its turn."""
    if not is_cut(record):
        return name
    limit = (record.get("settings") or {}).get("max_new_tokens")
    return f"{name} [cut at max_new_tokens={limit}]" if limit else f"{name} [cut at the token limit]"


def _samples(generations: dict[str, Path], limit: int) -> list[dict[str, str]]:
    by_model = {
        name: {r["prompt_id"]: r for r in read_jsonl_rows(path)} for name, path in generations.items()
    }
    ours = by_model.get("model", {})
    rows = []
    for prompt_id, record in list(ours.items())[:limit]:
        row = {"prompt": record.get("prompt", ""), _sample_label("model", record): record.get("output", "")}
        for name, recs in by_model.items():
            if name != "model":
                theirs = recs.get(prompt_id, {})
                row[_sample_label(name, theirs)] = theirs.get("output", "")
        rows.append(row)
    return rows


CHANGE_COLUMNS = {
    "model": "model",
    "answers": "answers",
    "mean_chars": "mean length (chars)",
    "mean_new_tokens": "mean new tokens",
    "ended_at_eot": "ended at end-of-turn",
    "cut_at_limit": "cut at max_new_tokens",
    "identical_to_base": "identical to base",
}


def _changes_section(changes: dict[str, Any], judge_separates: bool) -> tuple[str, str]:
    """ "What fine-tuning changed": dev loss from before the first step, and the answers against the base
    model's, as (html, markdown). Needs no judge, so it leads the report."""
    lead = "Measured without a judge."
    if not judge_separates:
        lead += " The judge below cannot separate the answers, so these numbers are the ones to read first."
    losses = [{"epoch": r["epoch"], "dev loss": r.get("dev_loss"), "train loss": r.get("train_loss")}
              for r in changes["dev_loss"]]  # fmt: skip
    answers = []
    for row in changes["answers"]:
        shown = {label: row.get(key) for key, label in CHANGE_COLUMNS.items()}
        for key in ("ended_at_eot", "cut_at_limit", "identical_to_base"):
            shown[CHANGE_COLUMNS[key]] = _pct(row.get(key)) if row.get(key) is not None else ""
        answers.append(shown)
    columns = list(CHANGE_COLUMNS.values())
    base = (
        f" (identical: the same text as {changes['base']}'s answer to the same prompt and seed)"
        if changes.get("base")
        else ""
    )
    html = (
        f"<h2>What fine-tuning changed</h2><p>{escape(lead)}{escape(base)}</p>"
        + (_table_html(losses, ["epoch", "dev loss", "train loss"]) if losses else "")
        + _table_html(answers, columns)
    )
    md = (
        f"## What fine-tuning changed\n\n{lead}{base}\n\n"
        + (_table_md(losses, ["epoch", "dev loss", "train loss"]) + "\n\n" if losses else "")
        + _table_md(answers, columns)
    )
    return html, md


def _calibration_block(result: Any) -> dict[str, Any] | None:
    """The calibrate stage's block (fresher than a skipped judge stage's summary), if the run had one."""
    if not getattr(result, "calibration", None):
        return None
    from lima.eval.calibrate import stored_block

    return stored_block(result.calibration)


def _first_calibration(judgments: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    return next((s["calibration"] for s in judgments.values() if s.get("calibration")), None)


def write_run_report(result: Any, config: Any) -> Path:
    out = result.out_dir
    sections_html: list[str] = []
    sections_md: list[str] = []
    calibration = _calibration_block(result)
    block = calibration or _first_calibration(result.judgments)
    if getattr(result, "changes", None):
        html, md = _changes_section(result.changes, bool(block and block.get("separates")))
        sections_html.append(html)
        sections_md.append(md)

    curate_dir = out / "curate"
    if curate_dir.exists():
        from lima.curation.report import render_data_card_html, render_data_card_md

        sections_html.append(render_data_card_html(curate_dir))  # it carries its own "Data card" heading
        sections_md.append(render_data_card_md(curate_dir))

    curves = training_curves(out / "train", out / "training_curves.png")
    epochs = read_jsonl_rows(out / "train" / "epochs.jsonl")
    sections_html.append(
        "<h2>Training</h2>"
        + (png_img(curves) if curves else "")
        + _table_html(epochs, ["epoch", "train_loss", "dev_loss", "checkpoint"])
    )
    sections_md.append(
        "## Training\n\n![training curves](training_curves.png)\n\n"
        + _table_md(epochs, ["epoch", "train_loss", "dev_loss", "checkpoint"])
    )

    sel = result.selection
    cols = ["epoch", "dev_loss", "vs", "win_rate", "wins", "ties", "losses", "selected"]
    note = f" ({sel['note']}: fell back from {sel['requested_strategy']})" if sel.get("note") else ""
    judged_selection = sel["strategy"] == "judge" and bool(sel.get("table"))
    judge_html, judge_md = _judge_note(block)
    sections_html.append(
        f"<h2>Checkpoint selection: {escape(sel['strategy'])}{escape(note)}</h2>"
        + (judge_html if judged_selection else "")
        + _table_html(sel["table"], cols)
    )
    sections_md.append(
        f"## Checkpoint selection: {sel['strategy']}{note}\n\n"
        + (judge_md + "\n\n" if judged_selection else "")
        + _table_md(sel["table"], cols)
    )

    if result.judgments:
        chart = out / "winrate.png"
        from lima.eval.report import winrate_chart

        winrate_chart(result.judgments, chart)
        rows = _judge_rows(result.judgments, calibration)
        columns = list(rows[0])
        sections_html.append(
            "<h2>Pairwise judgments (model vs baseline)</h2>"
            + judge_html
            + png_img(chart)
            + _table_html(rows, columns)
        )
        sections_md.append(
            "## Pairwise judgments (model vs baseline)\n\n"
            + judge_md
            + "\n\n![win/tie/loss](winrate.png)\n\n"
            + _table_md(rows, columns)
        )
    likert = {n: g for n, g in result.grades.items() if g.get("scale", "likert") == "likert"}
    absolute = {n: g for n, g in result.grades.items() if g.get("scale") == "absolute"}
    if likert:
        rows = _grade_rows(likert)
        sections_html.append("<h2>Likert helpfulness</h2>" + _table_html(rows, list(rows[0])))
        sections_md.append("## Likert helpfulness\n\n" + _table_md(rows, list(rows[0])))
    if absolute:
        from lima.eval.report import absolute_chart

        chart = absolute_chart(absolute, out / "absolute.png")
        rows = _absolute_rows(absolute)
        title = "Absolute analysis: Fail / Pass / Excellent (LIMA §4.3)"
        sections_html.append(f"<h2>{escape(title)}</h2>" + png_img(chart) + _table_html(rows, list(rows[0])))
        sections_md.append(
            f"## {title}\n\n![fail/pass/excellent](absolute.png)\n\n" + _table_md(rows, list(rows[0]))
        )

    samples = _samples(result.generations, config.report_samples)
    if samples:
        cards = "".join(
            "<h3>"
            + escape(s["prompt"][:300])
            + "</h3><div class='side'>"
            + "".join(
                f"<div><b>{escape(k)}</b><pre>{escape(v)}</pre></div>" for k, v in s.items() if k != "prompt"
            )
            + "</div>"
            for s in samples
        )
        sections_html.append("<h2>Sample generations</h2>" + cards)
        sections_md.append(
            "## Sample generations\n\n"
            + "\n\n".join(
                f"**Prompt:** {s['prompt'][:300]}\n\n"
                + "\n\n".join(f"*{k}:*\n\n```\n{v}\n```" for k, v in s.items() if k != "prompt")
                for s in samples
            )
        )

    manifest = redact(read_manifest(out) or {})
    sections_html.append("<h2>Manifest</h2><pre>" + escape(json.dumps(manifest, indent=2)) + "</pre>")
    sections_md.append("## Manifest\n\n```json\n" + json.dumps(manifest, indent=2) + "\n```")

    title = f"lima run: {config.name}"
    html_doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{CSS}</style>"
        f"</head><body><h1>{escape(title)}</h1>{''.join(sections_html)}</body></html>"
    )
    with atomic_open(out / "report.html") as fh:
        fh.write(html_doc)
    with atomic_open(out / "report.md") as fh:
        fh.write(f"# {title}\n\n" + "\n\n".join(sections_md) + "\n")
    return out / "report.html"
