"""The mix a curation asked for against the one it made: per group asked / candidates / train / dev, and for each
group short of its quota the nearest fix (more dumps of that kind, a looser filter, or a smaller quota)."""

from __future__ import annotations

from typing import Any

from lima.curation.config import CurateConfig
from lima.curation.empty import FIXES

# What to add when a group has too few candidates: the dumps that feed it.
KIND_HINTS = {
    "stem": "Stack Exchange dumps of STEM sites (configs/curate/data/stackexchange_sites.yaml lists them)",
    "other": "Stack Exchange dumps of non-STEM sites",
    "wikihow": "a wikiHow CSV of whole articles (title,heading,paragraph)",
    "reddit": "a Reddit/pushshift JSONL dump (r/WritingPrompts submissions with their comments)",
    "natinst": "the tasks/ folder of allenai/natural-instructions",
    "manual": "your own examples (JSONL records with source manual)",
}
_SOURCE_OF_GROUP = {"stem": "stackexchange", "other": "stackexchange"}
_NOT_FILTERS = {"not_selected", "no_quota", "in_dev_file"}


def _loosest_filter(source: str, counts: dict[str, Any]) -> str | None:
    reasons = counts["reasons_by_source"].get(source, {})
    for reason, n in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
        if reason in _NOT_FILTERS:
            continue
        fix = FIXES.get((source, reason)) or FIXES.get(("*", reason))
        if fix:
            return f"a looser filter: {fix} ({reason} dropped {n} {source} records)"
    return None


def nearest_fix(group: str, asked: int, row: dict[str, int], counts: dict[str, Any]) -> str:
    """What would fill ``group``'s quota, most useful first."""
    if row["candidates"] >= asked:  # the candidates were there: dev took them
        return f"a smaller dev.size, or dev.from_short_groups=false (dev took {row['dev']} of {group})"
    source = _SOURCE_OF_GROUP.get(group, group)
    more = f"more dumps of that kind: {KIND_HINTS.get(group, f'inputs whose records have source {group}')}"
    fed = group not in _SOURCE_OF_GROUP or group in counts.get("stackexchange_groups", [group])
    looser = _loosest_filter(source, counts) if fed else None  # no site of the group given: no filter helps
    options = [looser, more] if looser and row["candidates"] else [more, looser]
    options.append(f"a smaller quota: selection.quotas.{group}={row['train']}")
    return "; or ".join(o for o in options if o)


def shortfalls(counts: dict[str, Any], config: CurateConfig) -> list[dict[str, Any]]:
    """Every group whose train count is below its quota, with the nearest fix."""
    rows = []
    for group, asked in (config.selection.quotas or {}).items():
        got = counts["groups"].get(group, {})
        row = {k: int(got.get(k, 0)) for k in ("candidates", "train", "dev")}
        if asked <= 0 or row["train"] >= asked:
            continue
        rows.append({"group": group, "asked": asked, **row, "fix": nearest_fix(group, asked, row, counts)})
    return rows


def missing_groups(counts: dict[str, Any]) -> list[str]:
    """Groups the config asked for that the train set has none of."""
    return [r["group"] for r in counts.get("shortfalls", []) if r["train"] == 0]


def mix_rows(counts: dict[str, Any], pass_through: list[str]) -> list[list[Any]]:
    """One row per group: group, asked (a number, "all" or "whole" for pass-through), candidates, train, dev."""
    rows = []
    for group, row in counts["groups"].items():
        asked = "whole" if group in pass_through else row.get("quota", "all")
        rows.append([group, asked, row["candidates"], row["train"], row["dev"]])
    return rows


MIX_HEADER = ["group", "asked", "candidates", "train", "dev"]


def text_table(header: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    """A plain-text table, numbers right-aligned."""
    cells = [[str(v) for v in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(indent + "  ".join(parts).rstrip())
    return lines


def shortfall_lines(counts: dict[str, Any]) -> list[str]:
    """The console warning: the short groups and the nearest fix for each ([] when every quota is met)."""
    rows = counts.get("shortfalls", [])
    if not rows:
        return []
    missing = missing_groups(counts)
    head = f"WARNING: the train set is short of {len(rows)} quota(s) in selection.quotas"
    if missing:
        head += f"; it has NO examples of {', '.join(missing)}"
    lines = [head + ":"]
    lines += text_table(
        ["group", "asked", "candidates", "train", "dev"],
        [[r["group"], r["asked"], r["candidates"], r["train"], r["dev"]] for r in rows],
    )
    lines += [f"  fix {r['group']}: {r['fix']}" for r in rows]
    return lines
