"""Stack Exchange ``Posts.xml`` (plain, inside a per-site ``SITE.7z``, or a directory of them).

Two streaming passes keep memory bounded by the number of questions, never by the dump's bodies: pass 1
keeps ids and scores, picks each question's top answer (the accepted one breaks ties) and applies the
cheapest filters (type, scores, raw answer length); pass 2 reads only the rows of the pairs still in the
running, checks the title, converts the survivors to Markdown and applies the text filters. Pass 1 is the
one full XML parse; pass 2 finds its rows with a byte scan and parses only those. Reading the file is
``posts_xml``'s job; deciding what is wanted, and why the rest is dropped, is this module's.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

from lima.core.io import stable_hash
from lima.core.record import Example
from lima.curation.config import StackExchangeFilters
from lima.curation.filters import has_first_person, language_reason, length_reason, reference_phrase
from lima.curation.html import html_to_markdown
from lima.curation.sources import posts_xml
from lima.curation.types import Drop, ShardCounts

SOURCE = "stackexchange"
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
    with posts_xml.posts_file(path) as posts:
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
    utf8, dtd = posts_xml.prolog(posts)
    # The hot loop: one lookup per attribute, a body only where needed.
    for row in posts_xml.iter_rows(posts, dtd):
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
    for post_id, row in posts_xml.wanted_rows(
        posts, wanted_questions | set(wanted), scan=utf8 and not dtd, dtd=dtd
    ):
        get = row.get
        if post_id in wanted_questions:
            pending_q[post_id] = (
                get("Title") or "",
                get("Body"),
                get("Tags") or "",
                posts_xml.int_or(get("Score")),
                get("CreationDate") or "",
            )
            qid = post_id
        else:
            qid = wanted[post_id]
            pending_a[qid] = (get("Body"), posts_xml.int_or(get("Score")), post_id)
        if qid in pending_q and qid in pending_a:
            yield _pair(
                site, qid, pending_q.pop(qid), pending_a.pop(qid), rules, seed, counts, group, language, drop
            )


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
