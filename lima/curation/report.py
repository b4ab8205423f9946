"""The curation report (``report.html`` with embedded plots, ``report.md`` with PNGs beside it) and the
data card that the pipeline's own report reuses. Every piece of dump text is HTML-escaped."""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from lima.core.html import esc as escape
from lima.core.io import atomic_open
from lima.core.record import Example
from lima.curation.config import CurateConfig
from lima.curation.files import REPORT_HTML, REPORT_MD, SUMMARY
from lima.curation.lengths import LENGTH_HEADER, length_note, length_rows
from lima.curation.shortfall import MIX_HEADER, missing_groups, mix_rows

ASSETS = "report_assets"
MAP_DOMAINS = 10  # domains coloured on the embedding map; the rest are grey


def _md_cell(text: Any) -> str:
    """Table-cell safe Markdown: escaped HTML, no pipes or newlines."""
    return escape(text).replace("|", "\\|").replace("\n", " ")


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / SUMMARY).read_text(encoding="utf-8"))


# -- tables ---------------------------------------------------------------------------------------


def _shortfall_table(counts: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    rows = [
        [r["group"], r["asked"], r["candidates"], r["train"], r["dev"], r["fix"]]
        for r in counts["shortfalls"]
    ]
    missing = missing_groups(counts)
    title = "Warning: quota shortfall" + (f" (no examples of {', '.join(missing)})" if missing else "")
    return title, ["group", "asked", "candidates", "train", "dev", "nearest fix"], rows


def _tables(summary: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    counts = summary["counts"]
    cols = ["in", "filtered_out", "duplicates", "candidates", "dev", "train"]
    tables = [
        (
            "Counts per source",
            ["source", *cols],
            [[s, *(c.get(k, 0) for k in cols)] for s, c in counts["sources"].items()],
        ),
        ("Drop reasons", ["reason", "records"], [[r, n] for r, n in counts["reasons"].items()]),
        (
            "Drop reasons per source",
            ["source", "reason", "records"],
            [[s, r, n] for s, rs in counts["reasons_by_source"].items() for r, n in rs.items()],
        ),
        (
            "Mix per group (asked = the quota; whole = a pass-through group)",
            MIX_HEADER,
            mix_rows(counts, counts.get("pass_through", [])),
        ),
        ("Lengths against LIMA's Table 1", LENGTH_HEADER, length_rows(summary["stats"])),
        (
            "Domain mix of the train set",
            ["domain", "train"],
            [[d, n] for d, n in counts["domains_train"].items()],
        ),
        (
            "Rows that are not posts or could not be joined (skipped, not records)",
            ["kind", "rows"],
            [[k, n] for k, n in counts["skipped_rows"].items()],
        ),
        (
            "Repairs made to kept records",
            ["repair", "count"],
            [[k, n] for k, n in counts.get("repairs", {}).items()],
        ),
        (
            "Shards",
            ["shard", "format", "rows in", "kept", "reused"],
            [
                [s["shard"], s["format"], s["rows_in"], s["kept"], "yes" if s["skipped"] else "no"]
                for s in counts["shards"]
            ],
        ),
    ]
    return [t for t in tables if t[2]]


def _html_table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<h3>{escape(title)}</h3>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def _md_table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# -- plots ----------------------------------------------------------------------------------------


def _figures(summary: dict[str, Any], points: list[tuple[float, float, str]] | None) -> dict[str, bytes]:
    """PNG bytes per plot name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["stats"]["train"]
    figures: dict[str, bytes] = {}

    def save(name: str, fig) -> None:
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        figures[name] = buffer.getvalue()

    if rows:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        for ax, unit in zip(axes, ("chars", "tokens"), strict=True):
            ax.hist([r[f"prompt_{unit}"] for r in rows], bins=30, alpha=0.6, label="prompt")
            ax.hist([r[f"response_{unit}"] for r in rows], bins=30, alpha=0.6, label="response")
            ax.set_xlabel(unit)
            ax.set_ylabel("examples")
            ax.legend()
        axes[1].set_title(f"tokens: {summary['stats']['tokenizer']}", fontsize=8)
        save("lengths", fig)
        by_source: dict[str, list[float]] = {}
        for r in rows:
            if isinstance(r.get("score"), int | float):
                by_source.setdefault(r["source"], []).append(r["score"])
        if by_source:
            fig, ax = plt.subplots(figsize=(6, 3.2))
            for source, scores in sorted(by_source.items()):
                ax.hist(scores, bins=30, alpha=0.6, label=source)
            ax.set_xlabel("score")
            ax.set_ylabel("examples")
            ax.legend()
            save("scores", fig)
    if points:
        top = [d for d, _ in Counter(d for _, _, d in points).most_common(MAP_DOMAINS)]
        fig, ax = plt.subplots(figsize=(7, 5))
        others = [(x, y) for x, y, d in points if d not in top]
        if others:
            ax.scatter(*zip(*others, strict=True), s=8, c="lightgrey", label="other domains")
        for domain in top:
            xy = [(x, y) for x, y, d in points if d == domain]
            ax.scatter(*zip(*xy, strict=True), s=10, label=domain[:40])
        ax.set_title("selected set: all-MiniLM-L6-v2 embeddings, PCA")
        ax.legend(fontsize=7, loc="best")
        save("embedding_map", fig)
    return figures


def _map_points(train: list[Example], config: CurateConfig) -> list[tuple[float, float, str]] | None:
    if not config.report.embedding_map or len(train) < 2:
        return None
    from lima.curation.embed import embed, project_2d

    xy = project_2d(embed([f"{e.prompt}\n{e.response}" for e in train]))
    return [(float(x), float(y), e.domain or e.source) for (x, y), e in zip(xy, train, strict=True)]


# -- examples -------------------------------------------------------------------------------------


def _examples_html(examples: dict[str, Any]) -> str:
    kept, rejected = examples["kept"], examples["rejected"]
    rows = []
    for i in range(max(len(kept), len(rejected))):
        cells = []
        for item, label in (
            (kept[i] if i < len(kept) else None, "kept"),
            (rejected[i] if i < len(rejected) else None, "rejected"),
        ):
            if item is None:
                cells.append("<td></td>")
                continue
            why = f" — <b>{escape(item['reason'])}</b>" if label == "rejected" else ""
            cells.append(
                f"<td><div class=id>{escape(item['id'])} ({escape(item.get('domain', ''))}){why}</div>"
                f"<div class=p>{escape(item.get('prompt', ''))}</div><pre>{escape(item.get('response', ''))}</pre></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<h3>Kept and rejected examples</h3><table class=ex><thead><tr><th>kept</th><th>rejected</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _examples_md(examples: dict[str, Any]) -> str:
    lines = ["### Kept and rejected examples", "", "| kept | rejected |", "|---|---|"]
    kept, rejected = examples["kept"], examples["rejected"]
    for i in range(max(len(kept), len(rejected))):
        cells = []
        for item in (kept[i] if i < len(kept) else None, rejected[i] if i < len(rejected) else None):
            if item is None:
                cells.append("")
                continue
            why = f" **{_md_cell(item['reason'])}**" if "reason" in item else ""
            cells.append(
                f"`{_md_cell(item['id'])}`{why}<br>**Q:** {_md_cell(item.get('prompt', '')[:300])}"
                f"<br>**A:** {_md_cell(item.get('response', '')[:500])}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- data card (reused by the pipeline report) ----------------------------------------------------


def dev_cap_note(cap: dict[str, Any]) -> str:
    """One line saying that the dev split was capped, and why."""
    return (
        f"dev capped at {cap['cap']} (dev.size={cap['requested']}): at most {cap['max_fraction']:.0%} of the "
        f"{cap['candidates']} candidates go to dev, so the training set keeps the rest (dev.max_fraction)"
    )


def dev_short_note(short: dict[str, Any]) -> str:
    """One line saying that dev is smaller than asked because groups short of their quota gave none."""
    plan = ", ".join(f"{g} {n}" for g, n in sorted(short["plan"].items())) or "none"
    return (
        f"dev has {short['drawn']} of {short['requested']}: a group gives dev only what it has beyond its "
        f"training quota (per group: {plan}); dev.from_short_groups=true lifts this, dev.file names a dev set"
    )


def _card_facts(summary: dict[str, Any]) -> list[tuple[str, str]]:
    counts = summary["counts"]
    rows = summary["stats"]["train"]
    chars = sorted(r["response_chars"] for r in rows)
    tokens = sorted(r["response_tokens"] for r in rows)
    dev = str(counts["dev"])
    if "dev_capped" in counts:
        dev += f" ({dev_cap_note(counts['dev_capped'])})"
    if "dev_short" in counts:
        dev += f" ({dev_short_note(counts['dev_short'])})"
    if "dev_file" in counts:
        dev += f" (from {counts['dev_file']})"
    facts = [
        ("train examples", str(counts["train"])),
        ("dev examples", dev),
        ("sources", ", ".join(f"{s} {c['train']}" for s, c in counts["sources"].items() if c["train"])),
        ("domains", str(len(counts["domains_train"]))),
    ]
    if chars:
        facts.append(("response chars (median / max)", f"{chars[len(chars) // 2]} / {chars[-1]}"))
        facts.append(("response tokens (median / max)", f"{tokens[len(tokens) // 2]} / {tokens[-1]}"))
    dropped = sum(counts["reasons"].values())
    top = ", ".join(f"{r} {n}" for r, n in list(counts["reasons"].items())[:5])
    facts.append(("dropped", f"{dropped} ({top})" if dropped else "0"))
    return facts


def render_data_card_html(out_dir: str | Path) -> str:
    """An HTML fragment (a heading and a table) summarising the curated set in ``out_dir``."""
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _card_facts(load_summary(out_dir))
    )
    return f'<section class="data-card"><h2>Data card</h2><table>{rows}</table></section>'


def render_data_card_md(out_dir: str | Path) -> str:
    """A Markdown section summarising the curated set in ``out_dir``."""
    lines = ["## Data card", "", "| | |", "|---|---|"]
    lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in _card_facts(load_summary(out_dir))]
    return "\n".join(lines) + "\n"


# -- whole reports --------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top;font-size:13px}table.ex td{width:50%}pre{white-space:pre-wrap;font-size:12px;max-height:22em;
overflow:auto;background:#f7f7f7;padding:6px}.id{color:#666;font-size:12px}.p{font-weight:600;margin:4px 0}
img{max-width:100%}.warn{background:#fff3cd;border:2px solid #d9a400;padding:0 1em;margin:1em 0}"""


def write_reports(out_dir: Path, config: CurateConfig, train: list[Example]) -> tuple[Path, Path]:
    summary = load_summary(out_dir)
    figures = _figures(summary, _map_points(train, config))
    tables = _tables(summary)
    title = f"Curation report — {len(train)} train examples"

    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
    ]
    if summary["counts"].get(
        "shortfalls"
    ):  # first thing on the page: what the config asked for and did not get
        parts.append('<div class="warn">' + _html_table(*_shortfall_table(summary["counts"])) + "</div>")
    parts.append(render_data_card_html(out_dir))
    parts += [_html_table(*t) for t in tables]
    parts.append(f"<p>{escape(length_note(summary['stats']))}</p>")
    for name, png in figures.items():
        data = base64.b64encode(png).decode()
        parts.append(
            f'<h3>{escape(name.replace("_", " "))}</h3><img alt="{escape(name)}" src="data:image/png;base64,{data}">'
        )
    parts.append(_examples_html(summary["examples"]))
    parts.append(
        f"<h3>Config</h3><pre>{escape(json.dumps(config.model_dump(mode='json'), indent=2))}</pre></body></html>"
    )
    html_path = out_dir / REPORT_HTML
    with atomic_open(html_path) as fh:
        fh.write("\n".join(parts))

    assets = out_dir / ASSETS
    md = [f"# {title}", ""]
    if summary["counts"].get("shortfalls"):
        md.append(_md_table(*_shortfall_table(summary["counts"])))
    md.append(render_data_card_md(out_dir))
    md += [_md_table(*t) for t in tables]
    md.append(length_note(summary["stats"]) + "\n")
    if figures:
        assets.mkdir(exist_ok=True)
    for name, png in figures.items():
        with atomic_open(assets / f"{name}.png", "wb") as fh:
            fh.write(png)
        md.append(f"### {name.replace('_', ' ')}\n\n![{name}]({ASSETS}/{name}.png)\n")
    md.append(_examples_md(summary["examples"]))
    md_path = out_dir / REPORT_MD
    with atomic_open(md_path) as fh:
        fh.write("\n".join(md))
    return html_path, md_path
