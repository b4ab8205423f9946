"""A curation that leaves no training example fails (exit 2) with the drop table and the nearest fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lima.core.errors import LimaError
from lima.curation.config import CurateConfig

# (source, reason) -> the override that loosens the filter behind that reason; "*" matches any source.
FIXES: dict[tuple[str, str], str] = {
    ("stackexchange", "answer_score"): "filters.stackexchange.min_answer_score=null (or lower)",
    ("stackexchange", "question_score"): "filters.stackexchange.min_question_score=null",
    ("stackexchange", "too_short"): "filters.stackexchange.min_chars=null (or lower)",
    ("stackexchange", "too_short_raw"): "filters.stackexchange.min_chars=null (or lower)",
    ("stackexchange", "too_long"): "filters.stackexchange.max_chars=null (or higher)",
    ("stackexchange", "too_long_raw"): "filters.stackexchange.max_chars=null (or higher)",
    ("stackexchange", "first_person"): "filters.stackexchange.no_first_person=false",
    ("stackexchange", "refers_to_other_answers"): "filters.stackexchange.no_references=false",
    ("stackexchange", "title_not_a_question"): "filters.stackexchange.self_contained_title=false",
    ("wikihow", "no_steps"): "filters.wikihow.min_steps=1",
    ("wikihow", "too_short"): "filters.wikihow.min_chars=null",
    ("wikihow", "too_long"): "filters.wikihow.max_chars=null",
    ("wikihow", "cut_step"): "filters.wikihow.urls=host (links become host names) or drop_cut_steps=false",
    ("reddit", "answer_score"): "filters.reddit.min_score=null (or lower)",
    ("reddit", "too_short"): "filters.reddit.min_chars=null",
    ("reddit", "too_long"): "filters.reddit.max_chars=null",
    ("natinst", "category"): "filters.natinst.categories=null",
    ("natinst", "language"): "filters.natinst.languages=null",
    ("natinst", "too_short"): "filters.natinst.min_chars=null",
    ("natinst", "too_long"): "filters.natinst.max_chars=null",
    ("*", "too_short"): "filters.generic.min_chars=null",
    ("*", "too_long"): "filters.generic.max_chars=null",
    ("*", "language"): "filters.language=null",
    ("*", "no_quota"): "a quota for the group in selection.quotas (or selection.quotas=null)",
    ("*", "low_quality"): "a lower quality.min_rating",
}


class EmptyCurationError(LimaError):
    """No training example survived; ``counts`` are the run's counts (also in ``curation.json``)."""

    def __init__(self, message: str, counts: dict[str, Any]) -> None:
        super().__init__(message)
        self.counts = counts


def nearest_fix(counts: dict[str, Any], config: CurateConfig) -> str:
    """The override that would let the most records through, or what else to change."""
    drops = [
        (n, source, reason)
        for source, reasons in counts["reasons_by_source"].items()
        for reason, n in reasons.items()
        if reason != "not_selected"
    ]
    for n, source, reason in sorted(drops, key=lambda d: (-d[0], d[1], d[2])):
        fix = FIXES.get((source, reason)) or FIXES.get(("*", reason))
        if fix:
            return f"a looser filter: {fix} ({reason} dropped {n} {source} records)"
    if counts["dev"] and not counts["train"]:
        return f"a smaller dev.size (now {config.dev.size})"
    return "more inputs (--input PATH): no filter that can be loosened dropped them"


def empty_message(counts: dict[str, Any], config: CurateConfig, report: Path) -> str:
    """The drop table (reason -> count) and the nearest fix, for the one error the CLI prints."""
    records = sum(source["in"] for source in counts["sources"].values())
    lines = [f"no training examples: {records} input records, {counts['dev']} went to dev; dropped:"]
    width = max((len(r) for r in counts["reasons"]), default=0)
    lines += [f"  {reason:<{width}}  {n}" for reason, n in counts["reasons"].items()] or ["  (nothing)"]
    lines.append(f"nearest fix: {nearest_fix(counts, config)}; details in {report}")
    return "\n".join(lines)
