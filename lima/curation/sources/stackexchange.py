"""Stack Exchange ``Posts.xml`` (plain, inside a per-site ``SITE.7z``, or a directory of them).

Two streaming passes keep memory bounded by the number of questions, never by the dump's bodies: pass 1
keeps ids and scores, picks each question's top answer (the accepted one breaks ties) and applies the
cheapest filters (type, scores, raw answer length); pass 2 reads only the rows of the pairs still in the
running, checks the title, converts the survivors to Markdown and applies the text filters. Pass 1 is the
one full XML parse; pass 2 finds its rows with a byte scan and parses only those (see ``_wanted_rows``).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from lima.core.errors import LimaError
from lima.core.io import stable_hash
from lima.core.record import Example
from lima.curation.config import StackExchangeFilters
from lima.curation.filters import has_first_person, language_reason, length_reason, reference_phrase
from lima.curation.html import html_to_markdown
from lima.curation.types import Drop, ShardCounts

SOURCE = "stackexchange"
_FREE_EVERY = 128  # rows kept in the parsed tree before they are freed together (fits in cache)
QUESTION, ANSWER = "1", "2"
_NON_POSTS = {
    "3": "orphaned_tag_wiki",
    "4": "tag_wiki_excerpt",
    "5": "tag_wiki",
    "6": "moderator_nomination",
    "7": "placeholder",
    "8": "privilege_wiki",
}
_QUESTION_WORDS = re.compile(
    r"^(how|what|why|when|where|which|who|whom|whose|is|are|was|were|do|does|did|can|could|should|would|"
    r"will|shall|may|might|must|has|have|had|am)\b",
    re.I,
)
# The CC BY-SA version of a post follows its creation date (Stack Exchange moved to 4.0 on 2018-05-02).
_CC4_FROM = "2018-05-02"


def site_of(path: Path) -> str:
    """``beer.stackexchange.com-Posts.xml`` / ``beer.stackexchange.com.7z`` / ``beer…/Posts.xml`` → site."""
    name = path.name
    if name.lower().endswith(".7z"):
        return name[:-3]
    stem = re.sub(r"[-_.]?Posts\.xml$", "", name, flags=re.I)
    return stem or path.parent.name


def parse_tags(raw: str | None) -> list[str]:
    """Both dump forms: ``<a><b>`` (entity-escaped in the file) and ``|a|b|``."""
    if not raw:
        return []
    if raw.startswith("<"):
        return re.findall(r"<([^<>]+)>", raw)
    return [t for t in raw.split("|") if t]


def self_contained_title(title: str) -> bool:
    """LIMA keeps questions whose title alone is the question: a question mark or a question word."""
    title = title.strip()
    return len(title.split()) >= 3 and (title.endswith("?") or _QUESTION_WORDS.match(title) is not None)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _rows(path: Path, dtd: bool = True) -> Iterator[etree._Element]:
    """Stream ``<row>`` elements; finished rows are freed in batches.

    A file with a DTD is read with entity resolution off, as always. Without a DTD no entity can be
    declared, so libxml2's default entity handling reads the same values, ~8% faster.
    """
    try:
        n = 0
        for _, elem in etree.iterparse(
            str(path),
            events=("end",),
            tag="row",
            huge_tree=True,
            resolve_entities=False if dtd else "internal",
            no_network=True,
        ):
            yield elem
            n += 1
            if n == _FREE_EVERY:
                n = 0
                parent = elem.getparent()
                if parent is not None:
                    del parent[:]  # every child is finished: the parser is past this row's end
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        raise LimaError(
            f"{path}: line {line}, column {col}: malformed or truncated XML ({exc.msg}); "
            "re-download or re-extract the dump"
        ) from None
    except OSError as exc:
        raise LimaError(f"{path}: cannot read ({exc})") from None


@contextlib.contextmanager
def posts_file(path: Path) -> Iterator[Path]:
    """The ``Posts.xml`` to read: the file itself, or extracted from a ``.7z`` into a temp dir."""
    if path.suffix.lower() != ".7z":
        yield path
        return
    import py7zr

    try:
        with py7zr.SevenZipFile(path, "r") as archive:
            names = [n for n in archive.getnames() if Path(n).name.lower() == "posts.xml"]
            if not names:
                raise LimaError(
                    f"{path}: the archive holds no Posts.xml (it has {len(archive.getnames())} files)"
                )
            with tempfile.TemporaryDirectory(prefix="lima-7z-") as tmp:
                archive.extract(path=tmp, targets=names[:1])
                yield Path(tmp) / names[0]
    except (py7zr.Bad7zFile, py7zr.exceptions.ArchiveError, EOFError, OSError) as exc:
        raise LimaError(f"{path}: not a readable 7z archive ({exc}); re-download the site dump") from None


def _license(date: str | None) -> str:
    return "CC BY-SA 4.0" if (date or "") >= _CC4_FROM else "CC BY-SA 3.0"


def read_stackexchange(
    path: Path,
    rules: StackExchangeFilters,
    seed: int,
    counts: ShardCounts,
    group: str,
    language: str | None = None,
) -> Iterator[Example | Drop]:
    site = site_of(path)
    with posts_file(path) as posts:
        yield from _read_posts(posts, site, rules, seed, counts, group, language)


def _read_posts(
    posts: Path,
    site: str,
    rules: StackExchangeFilters,
    seed: int,
    counts: ShardCounts,
    group: str,
    language: str | None,
) -> Iterator[Example | Drop]:
    def drop(qid: int | str, reason: str, **text: str) -> Drop:
        counts.drop(reason)
        return Drop(id=f"{site}-{qid}", source=SOURCE, domain=site, reason=reason, **text)

    # Pass 1: ids and scores, and the raw length of the answers that could still be chosen.
    questions: dict[int, int] = {}  # question id -> accepted answer id (0 = none)
    top: dict[int, tuple[int, int]] = {}  # question id -> (best score so far, its first answer id)
    ties: dict[int, list[int]] = {}  # question id -> further answer ids at that best score (rare)
    seen_questions: set[int] = set()
    early: dict[int, str] = {}  # answer id -> why it can be dropped without reading it again
    raw_min = rules.min_chars * rules.raw_min_fraction if rules.min_chars is not None else None
    min_question_score = rules.min_question_score
    min_answer_score = rules.min_answer_score
    utf8, dtd = _prolog(posts)
    for row in _rows(posts, dtd):  # the hot loop: one lookup per attribute, a body only where needed
        get = row.get
        kind = get("PostTypeId")
        if kind == ANSWER:
            try:
                parent, post_id, score = int(get("ParentId")), int(get("Id")), int(get("Score") or 0)
            except (TypeError, ValueError):
                counts.skip("answer_without_parent_or_id")
                continue
            best = top.get(parent)
            if best is None or score > best[0]:
                top[parent] = (score, post_id)
                ties.pop(parent, None)
            elif score == best[0]:
                ties.setdefault(parent, []).append(post_id)
            else:
                continue
            # A body is read only when the answer could pass its score bound: else it is dropped for that.
            if raw_min is not None and (min_answer_score is None or score >= min_answer_score):
                body = get("Body")
                if body is None:
                    early[post_id] = "missing_body"
                elif len(body) < raw_min:  # a cheap bound, checked here so pass 2 never reads this body
                    early[post_id] = "too_short_raw"
        elif kind == QUESTION:
            counts.rows_in += 1
            try:
                post_id = int(get("Id"))
                accepted = int(get("AcceptedAnswerId") or 0)
                low = min_question_score is not None and int(get("Score") or 0) < min_question_score
            except (TypeError, ValueError):
                yield drop(f"row{counts.rows_in}", "bad_row")
                continue
            seen_questions.add(post_id)
            if low:
                yield drop(post_id, "question_score")
            else:  # title and body are checked in pass 2, for the few questions still in the running
                questions[post_id] = accepted
        else:
            counts.skip(_NON_POSTS.get(kind or "", f"post_type_{kind}"))

    orphans = sum(1 for parent in top if parent not in seen_questions)
    if orphans:
        counts.skipped_rows["answers_to_missing_question"] = orphans
    del seen_questions
    wanted: dict[int, int] = {}  # answer id -> question id
    for qid, accepted in questions.items():
        best = top.get(qid)
        if best is None:
            yield drop(qid, "no_answer")
        elif rules.min_answer_score is not None and best[0] < rules.min_answer_score:
            yield drop(qid, "answer_score")
        else:  # LIMA takes the top answer only; the accepted one breaks ties
            tied = [best[1], *ties.get(qid, ())]
            answer = accepted if accepted in tied else min(tied)
            if answer in early:
                yield drop(qid, early[answer])
            else:
                wanted[answer] = qid
    del top, ties, early
    wanted_questions = set(wanted.values())
    questions = {}

    # Pass 2: bodies of the pairs still in the running, joined as both halves arrive.
    pending_q: dict[int, tuple[str, str | None, str, int, str]] = {}
    pending_a: dict[int, tuple[str | None, int, int]] = {}  # question id -> (body, score, answer id)
    for post_id, row in _wanted_rows(posts, wanted_questions | set(wanted), scan=utf8 and not dtd, dtd=dtd):
        get = row.get
        if post_id in wanted_questions:
            pending_q[post_id] = (
                get("Title") or "",
                get("Body"),
                get("Tags") or "",
                _int(get("Score")),
                get("CreationDate") or "",
            )
            qid = post_id
        else:
            qid = wanted[post_id]
            pending_a[qid] = (get("Body"), _int(get("Score")), post_id)
        if qid in pending_q and qid in pending_a:
            yield _pair(
                site, qid, pending_q.pop(qid), pending_a.pop(qid), rules, seed, counts, group, language, drop
            )


_BLOCK = 4 << 20
_MAX_BLOCK = 64 << 20  # a row longer than this is left to the full parse
_MAX_MISSES = 8  # ids not where Id order puts them, before the byte scan leaves the rest to the full parse
_ROW_START = b'<row Id="'  # the layout of real dumps; any other is read by the full parse
_ROW_ID = re.compile(rb'<row Id="(\d+)"')
_UTF8_NAMES = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_XML_DECL = re.compile(rb"""\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)
_HEAD = 64 << 10


def _wanted_rows(
    posts: Path, wanted: set[int], scan: bool = True, dtd: bool = True
) -> Iterator[tuple[int, etree._Element]]:
    """(id, row) for each wanted id: the first row with that id, as the full parse gives it.

    Pass 1 parsed the whole file, so it is well-formed. With ``scan`` (UTF-8 without a DTD, as real dumps
    are) the rows are found with a byte scan and only the wanted ones are parsed. Rows the scan cannot
    place (another layout or order, a ``/>`` inside a value) are read by a full streaming parse afterwards,
    so the result never depends on the layout.
    """
    given: set[int] = set()
    if scan:
        yield from _scan_rows(posts, sorted(wanted), given)
    missing = wanted - given
    if missing:
        for row in _rows(posts, dtd):
            post_id = _int(row.get("Id"), -1)
            if post_id in missing:
                missing.discard(post_id)
                yield post_id, row
                if not missing:
                    break


def _prolog(posts: Path) -> tuple[bool, bool]:
    """(UTF-8 or ASCII, may have a DTD), read from the file's prolog.

    A row's bytes parse the same on their own only in UTF-8 and without a DTD (no declared entities).
    A prolog longer than the bytes read counts as having a DTD.
    """
    with open(posts, "rb") as fh:
        head = fh.read(_HEAD)
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    elif b"\0" in head[:4]:  # UTF-16 or UTF-32, with or without a byte-order mark
        return False, True
    decl = _XML_DECL.match(head)
    end = _PROLOG.match(head).end()  # past the declaration, comments, processing instructions
    dtd = end == len(head) or head.startswith(b"<!DOCTYPE", end)
    return decl is None or decl.group(1).lower() in _UTF8_NAMES, dtd


def _scan_rows(posts: Path, wanted: list[int], given: set[int]) -> Iterator[tuple[int, etree._Element]]:
    """The byte scan of :func:`_wanted_rows` for ``wanted`` in ascending order; adds what it yields to
    ``given``.

    Dumps list their rows by ascending ``Id`` as ``<row Id="N" …/>``, so each block is searched once: for
    the wanted ids up to the block's last, each search going on from the previous hit. An id that is not
    where that order puts it is not found here; after a few such misses (each searched a whole block) the
    scan stops. Blocks end before their last ``<row`` (a raw ``<`` cannot occur inside a value, so every
    row before it is whole). A block's wanted rows are parsed together, as one document.
    """
    parser = etree.XMLParser(huge_tree=True, no_network=True)  # a lone row has no DTD: no entity to keep
    i, n, size, misses = 0, len(wanted), _BLOCK, 0
    with open(posts, "rb", buffering=0) as fh:
        total = os.fstat(fh.fileno()).st_size
        while i < n:
            data = fh.read(size)
            eof = fh.tell() >= total
            cut = len(data) if eof else data.rfind(b"<row")
            if cut <= 0 and not eof:  # one row fills the block: read a bigger one from the same place
                size *= 2
                if size > _MAX_BLOCK:
                    return
                fh.seek(-len(data), 1)
                continue
            fh.seek(cut - len(data), 1)  # the next block starts at the cut
            size = _BLOCK
            last = _ROW_ID.match(data, max(data.rfind(_ROW_START, 0, cut), 0), cut)
            top = int(last.group(1)) if last else -1
            ids, rows, at = [], [], 0
            while i < n and wanted[i] <= top:
                post_id = wanted[i]
                i += 1
                start = data.find(b'<row Id="%d"' % post_id, at, cut)
                if start < 0:
                    misses += 1
                    if misses > _MAX_MISSES:
                        i = n
                    continue
                end = data.find(b"/>", start, cut)
                if end >= 0:
                    ids.append(post_id)
                    rows.append(data[start : end + 2])
                    at = end
            for post_id, row in _parse_rows(ids, rows, parser):
                given.add(post_id)
                yield post_id, row
            if eof:
                return


def _parse_rows(
    ids: list[int], rows: list[bytes], parser: etree.XMLParser
) -> list[tuple[int, etree._Element]]:
    """Parse the row texts in one document (one parser call instead of one per row); row by row when that
    fails. Only rows whose parsed ``Id`` is the one searched for are returned."""
    try:
        parsed = list(etree.fromstring(b"<rows>" + b"".join(rows) + b"</rows>", parser))
    except etree.XMLSyntaxError:
        parsed = []
    if len(parsed) != len(rows):
        parsed = []
        for text in rows:
            try:
                parsed.append(etree.fromstring(text, parser))
            except etree.XMLSyntaxError:  # e.g. a raw "/>" inside a value: the full parse reads this row
                parsed.append(None)
    return [
        (i, row)
        for i, row in zip(ids, parsed, strict=True)
        if row is not None and row.tag == "row" and _int(row.get("Id"), -1) == i
    ]


def _pair(site, qid, question, answer, rules, seed, counts, group, language, drop) -> Example | Drop:
    title, q_body, tags, q_score, date = question
    a_body, a_score, aid = answer
    if q_body is None or a_body is None:
        return drop(qid, "missing_body")
    if not title.strip():
        return drop(qid, "missing_title")
    if rules.self_contained_title and not self_contained_title(title):
        return drop(qid, "title_not_a_question", prompt=title)
    # Cheap bounds on the raw HTML first, so conversion touches only plausible answers.
    if rules.min_chars is not None and len(a_body) < rules.min_chars * rules.raw_min_fraction:
        return drop(qid, "too_short_raw")
    if rules.max_chars is not None and len(a_body) > rules.max_chars * 20:
        return drop(qid, "too_long_raw")
    response = html_to_markdown(a_body, rules.markup)
    reason = length_reason(response, rules.min_chars, rules.max_chars)
    if reason is None and rules.no_first_person and has_first_person(response):
        reason = "first_person"
    if reason is None and rules.no_references and reference_phrase(response, rules.reference_phrases):
        reason = "refers_to_other_answers"
    if reason is not None:  # the body is converted only for answers that passed
        return drop(qid, reason, prompt=title.strip(), response=response)
    use_title = rules.prompt_from == "title" or (
        rules.prompt_from == "random" and random.Random(stable_hash([seed, site, qid])).random() < 0.5
    )
    prompt = title.strip() if use_title else html_to_markdown(q_body, rules.markup) or title.strip()
    reason = language_reason(prompt + "\n" + response, language)
    if reason is not None:
        return drop(qid, reason, prompt=prompt, response=response)
    counts.kept += 1
    return Example(
        id=f"{site}-{qid}",
        source=SOURCE,
        domain=site,
        messages=[{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
        meta={
            "score": a_score,
            "question_score": q_score,
            "answer_id": aid,
            "group": group,
            "tags": parse_tags(tags),
            "prompt_from": "title" if use_title else "body",
            "url": f"https://{site}/questions/{qid}",
            "license": _license(date),
        },
    )
