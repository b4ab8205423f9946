"""wikiHow CSVs in three layouts, detected from the header:

- per step:    ``title,heading,paragraph`` (rows of one article are consecutive)
- per article: ``title,result`` (a numbered step list in one cell)
- wikihowAll:  ``headline,title,text``

An optional ``category`` column becomes the domain (LIMA samples a category, then an article).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from lima.core.errors import LimaError
from lima.core.io import stable_hash
from lima.core.record import Example
from lima.curation.config import WikiHowFilters
from lima.curation.filters import language_reason, length_reason
from lima.curation.html import strip_urls
from lima.curation.types import Drop, ShardCounts

SOURCE = "wikihow"
LAYOUTS = {
    "steps": ("title", "heading", "paragraph"),
    "articles": ("title", "result"),
    "wikihowall": ("headline", "title", "text"),
}
_THIS_ARTICLE = re.compile(r"\b([Tt])his (?:article|wikiHow)\b")
_CITATION = re.compile(r"\[\d+\]|\bX (?:Research|Expert|Trustworthy) [Ss]ource\b")
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s*")
# Some rows run the steps together ("1. Open Messages.2. Tap New Message."): break before each number.
_RUN_ON_STEP = re.compile(r"(?<=[.!?)\"'])[ \t]*(?=\d{1,3}\.\s*[A-Z])")
# A subtitle follows a colon and a space ("…Clothes: 14+ Easy Methods"); a colon inside a token is content
# ("Code::Blocks", "12:00"). wikiHow's page-title suffix " - wikiHow" goes too.
_SUBTITLE = re.compile(r"(?<![:\s]):\s+\S.*$")
_SITE_SUFFIX = re.compile(r"\s+-\s+wikiHow\s*$", re.I)
# Page titles in list form: "13 Ways to Prepare for Each School Day", "3 Simple Ways to …", "Easy Ways to …".
_WAYS_TO = re.compile(
    r"^(?:\d+\+?\s+)?(?:[A-Z][a-z]+\s+){0,2}(?:Ways|Tips|Methods|Ideas|Tricks)\s+to\s+(?=\S)"
)
# wikihowAll titles carry the article's index glued to the last word ("…Artist1"); a number after a space or
# a capital is content ("Windows 8", "LG G3").
_GLUED_INDEX = re.compile(r"(?<=[a-z])\d+$")

csv.field_size_limit(min(sys.maxsize, 1 << 30))


def prompt_from_title(title: str, glued_index: bool = False) -> str:
    """``How to Remove Lint from Clothes: 14+ Easy Methods`` / ``Get a MAC Address`` → ``How to …?``.

    ``glued_index``: the layout appends an index to every title (wikihowAll), so it is stripped.
    """
    title = title.strip()
    if glued_index:
        title = _GLUED_INDEX.sub("", title)
    title = _SUBTITLE.sub("", _SITE_SUFFIX.sub("", title)).strip().rstrip("?.!").strip()
    title = _WAYS_TO.sub("", title)
    if re.match(r"how to\b", title, re.I):
        title = "How to" + title[6:]
    else:
        if len(title) > 1 and title[0].isupper() and title[1].islower():
            title = title[0].lower() + title[1:]
        title = f"How to {title}"
    return title + "?"


# A URL in a step ("Go to https://www.facebook.com/ and log in.") is the step's object: removing it leaves a cut
# step ("Go to and log in."), so it becomes its host name ("Go to facebook.com and log in.").
_URL_TOKEN = re.compile(r"(?<![\w/@])(?:https?://|www\.)[^\s)\]>\"']+", re.I)
_URL_TRAIL = ".,;:!?"
# A step whose object is gone: an instruction that ends right after "Go to" / "Visit" (nothing left to go to),
# or a number with no text. Only in command position (step start or sentence start): "during your visit." is whole.
_CUT_STEP = re.compile(
    r"(?:^\s*\d+[.)]\s*(?:\*\*)?\s*|[.!?]\s+|\*\*\s*)(?:(?:go|navigate|head|browse)\s+(?:back\s+)?to|visit)"
    r"\s*[.,;:!?]?\s*(?:\*\*)?\s*$"
    r"|^\s*\d+[.)]\s*(?:\*\*\s*\*\*)?\s*[.,;:!?]?\s*$",
    re.I,
)


def url_as_text(url: str) -> str:
    """``https://www.paypal.com/login/`` → ``paypal.com/login``; a long path or a query keeps the host only."""
    trail = ""
    while url and url[-1] in _URL_TRAIL:
        url, trail = url[:-1], url[-1] + trail
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").removeprefix("www.")
    path = parts.path.rstrip("/")
    text = f"{host}{path}" if path and len(host + path) <= 40 and not parts.query else host
    return (text or url) + trail


def repair_urls(text: str) -> str:
    return _URL_TOKEN.sub(lambda m: url_as_text(m.group(0)), text)


def count_urls(text: str) -> int:
    return len(_URL_TOKEN.findall(text))


def cut_step(body: str) -> str | None:
    """The first step (line) of ``body`` whose text was cut, or None."""
    for line in body.splitlines():
        if _NUMBERED.match(line) and _CUT_STEP.search(line):
            return line.strip()
    return None


_IMAGE_JSON = re.compile(r'\{\s*"smallUrl"')
_DECODER = json.JSONDecoder()


def drop_image_json(text: str) -> str:
    """Remove the inline image objects (``{"smallUrl": ..., "licensing": "<div>…"}``) some dumps carry."""
    while match := _IMAGE_JSON.search(text):
        try:
            _, end = _DECODER.raw_decode(text, match.start())
        except json.JSONDecodeError:
            close = text.find("}", match.start())
            end = len(text) if close < 0 else close + 1
        text = text[: match.start()] + text[end:]
    return text


def clean_text(text: str, rules: WikiHowFilters) -> str:
    text = drop_image_json(text)
    text = _CITATION.sub("", text)
    text = strip_urls(repair_urls(text) if rules.urls == "host" else text)
    if rules.rewrite_this_article:
        text = _THIS_ARTICLE.sub(
            lambda m: "The following answer" if m.group(1) == "T" else "the following answer", text
        )
    return re.sub(r"[ \t]+", " ", text).strip()


def _pruned(heading: str, rules: WikiHowFilters) -> bool:
    return heading.strip().rstrip(":.").lower() in rules.prune_sections


def _steps_markdown(steps: list[tuple[str, str]], rules: WikiHowFilters) -> str:
    """Numbered Markdown steps: the bold step headline, then its paragraph without the repeated headline."""
    lines = []
    for heading, paragraph in steps:
        heading = clean_text(heading, rules)
        paragraph = clean_text(paragraph, rules)
        if heading and paragraph.startswith(heading):
            paragraph = paragraph[len(heading) :].strip()
        item = f"**{heading}** {paragraph}".strip() if heading else paragraph
        lines.append(f"{len(lines) + 1}. {item}")
    return "\n".join(lines)


def _article_markdown(result: str, rules: WikiHowFilters) -> tuple[str, int]:
    lines, steps = [], 0
    for raw in _RUN_ON_STEP.sub("\n", result).splitlines():
        line = clean_text(raw, rules)
        if not line:
            continue
        if _NUMBERED.match(line):
            steps += 1
            line = _NUMBERED.sub(f"{steps}. ", line)
        lines.append(line)
    return "\n".join(lines), max(steps, 1 if lines else 0)


def _all_markdown(text: str, rules: WikiHowFilters) -> tuple[str, int]:
    paragraphs = [clean_text(p.strip().lstrip(",;").strip(), rules) for p in re.split(r"\n+", text)]
    paragraphs = [p for p in paragraphs if p and not _pruned(p, rules)]
    return "\n\n".join(paragraphs), len(paragraphs)


def _open_csv(path: Path) -> tuple[csv.DictReader, object, str]:
    # surrogateescape: a row with bytes that are not UTF-8 is counted and skipped, not fatal.
    try:
        fh = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise LimaError(f"{path}: cannot read ({exc})") from None
    reader = csv.DictReader(fh)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        fh.close()
        raise LimaError(f"{path}: empty file; expected a wikiHow CSV with a header row")
    reader.fieldnames = header
    for layout, columns in LAYOUTS.items():
        if all(c in header for c in columns):
            return reader, fh, layout
    fh.close()
    raise LimaError(
        f"{path}: line 1: header {','.join(header)} matches no wikiHow layout; expected one of "
        + " | ".join(",".join(c) for c in LAYOUTS.values())
    )


def _rows(reader: csv.DictReader, path: Path, counts: ShardCounts) -> Iterator[dict[str, str] | Drop]:
    """Rows that are well-formed UTF-8 with every column; the rest become counted Drops."""
    width = len(reader.fieldnames or [])

    def bad(reason: str) -> Drop:
        counts.rows_in += 1
        counts.drop(reason)
        return Drop(id=f"{path.name}:line{reader.line_num}", source=SOURCE, reason=reason, stage="read")

    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield bad("malformed_row")
            continue
        if None in row or any(v is None for v in row.values()) or len(row) != width:
            yield bad("malformed_row")
            continue
        if any("\udc80" <= ch <= "\udcff" for v in row.values() for ch in v):
            yield bad("not_utf8")
            continue
        yield row


def read_wikihow(
    path: Path, rules: WikiHowFilters, counts: ShardCounts, language: str | None = None
) -> Iterator[Example | Drop]:
    reader, fh, layout = _open_csv(path)
    try:
        yield from _articles(reader, layout, path, rules, counts, language)
    finally:
        fh.close()  # type: ignore[attr-defined]


def _articles(reader, layout, path, rules, counts, language) -> Iterator[Example | Drop]:
    if layout == "steps":
        current: str | None = None
        category = ""
        steps: list[tuple[str, str]] = []
        urls = 0
        for row in _rows(reader, path, counts):
            if isinstance(row, Drop):
                yield row
                continue
            if row["title"] != current:
                if current is not None:
                    body = _steps_markdown(steps, rules)
                    yield _article(current, category, body, len(steps), rules, counts, language, urls=urls)
                current, category, steps, urls = row["title"], row.get("category", ""), [], 0
            if not _pruned(row["heading"], rules) and row["paragraph"].strip():
                steps.append((row["heading"], row["paragraph"]))
                urls += count_urls(row["heading"]) + count_urls(row["paragraph"])
        if current is not None:
            body = _steps_markdown(steps, rules)
            yield _article(current, category, body, len(steps), rules, counts, language, urls=urls)
        return
    for row in _rows(reader, path, counts):
        if isinstance(row, Drop):
            yield row
            continue
        raw = row["result"] if layout == "articles" else row["text"]
        if layout == "articles":
            body, n_steps = _article_markdown(raw, rules)
        else:
            body, n_steps = _all_markdown(raw, rules)
        glued = layout == "wikihowall"
        yield _article(
            row["title"],
            row.get("category", ""),
            body,
            n_steps,
            rules,
            counts,
            language,
            glued,
            count_urls(raw),
        )


def _article(
    title, category, body, n_steps, rules, counts, language, glued_index=False, urls=0
) -> Example | Drop:
    counts.rows_in += 1
    domain = (category or "").strip() or "wikihow"
    prompt = prompt_from_title(title, glued_index)
    record_id = f"wikihow-{stable_hash(title.strip())[:12]}"
    reason, detail = None, ""
    cut = cut_step(body) if rules.drop_cut_steps else None
    if not title.strip():
        reason = "missing_title"
    elif n_steps < rules.min_steps or not body:
        reason = "no_steps"
    elif cut:  # a step whose object (a link, an image) is gone: the instructions no longer work
        reason, detail = "cut_step", f"step {cut[:120]!r} lost its object"
    else:
        reason = length_reason(body, rules.min_chars, rules.max_chars) or language_reason(body, language)
    if reason:
        counts.drop(reason)
        return Drop(
            id=record_id,
            source=SOURCE,
            domain=domain,
            reason=reason,
            prompt=prompt,
            response=body,
            detail=detail,
        )
    counts.kept += 1
    if urls and rules.urls == "host":
        counts.repair("url_as_host_name", urls)
    return Example(
        id=record_id,
        source=SOURCE,
        domain=domain,
        messages=[{"role": "user", "content": prompt}, {"role": "assistant", "content": body}],
        meta={"title": title.strip(), "steps": n_steps, "group": SOURCE, "license": "CC BY-NC-SA 3.0"},
    )
