"""The real dumps in ../shared/data through the real CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.curation.conftest import FAST, LIMA_YAML, assert_ok, read_jsonl, summary

URL = re.compile(r"https?://|www\.|\]\(|!\[", re.I)  # URLs and Markdown links/images
LINK = re.compile(URL.pattern + r"|<a\s|<img", re.I)  # ... and HTML ones (converted SE bodies)


@pytest.fixture(scope="module")
def lima_run(shared_data, tmp_path_factory):
    """LIMA's recipe over both Stack Exchange dumps and both wikiHow files, all candidates kept."""
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("lima-run")
    result = run_cli(
        "curate", LIMA_YAML, "--out", str(out),
        "--input", str(shared_data / "stackexchange"), "--input", str(shared_data / "wikihow"),
        "selection.quotas=null", "dev.size=0", "filters.wikihow.min_steps=2", "filters.wikihow.min_chars=null", *FAST,
    )  # fmt: skip
    assert_ok(result)
    return out


# The oracle below is written from LIMA's rules and the dump itself (xml.etree, not the reader under test).
PRONOUNS = {
    "I",
    "I'm",
    "I've",
    "I'd",
    "I'll",
    "I’m",
    "I’ve",
    "I’d",
    "I’ll",
    "me",
    "my",
    "mine",
    "Me",
    "My",
    "Mine",
}
SITE_TALK = ("other answer", "another answer", "answer above", "accepted answer", "stack exchange",
             "stackexchange", "as mentioned", "upvote", "downvote", "edit:")  # fmt: skip
QUESTION_WORDS = ("how", "what", "why", "when", "where", "which", "who", "is", "are", "can", "does", "do",
                  "should", "would", "will", "could", "did", "was", "were", "has", "have")  # fmt: skip


def _dump(path: Path) -> tuple[dict[int, dict], dict[int, list[dict]]]:
    """Questions by id and answers by question id, straight from Posts.xml."""
    import xml.etree.ElementTree as ET

    questions: dict[int, dict] = {}
    answers: dict[int, list[dict]] = {}
    for _, row in ET.iterparse(path):
        if row.tag != "row":
            continue
        if row.get("PostTypeId") == "1":
            questions[int(row.get("Id"))] = dict(row.attrib)
        elif row.get("PostTypeId") == "2":
            answers.setdefault(int(row.get("ParentId")), []).append(dict(row.attrib))
        row.clear()
    return questions, answers


def _without_code(text: str) -> str:
    return re.sub(r"```.*?```|`[^`\n]*`", " ", text, flags=re.S)


def test_every_kept_stack_exchange_example_meets_every_lima_bound(lima_run, shared_data):
    records = [r for r in read_jsonl(lima_run / "train.jsonl") if r["source"] == "stackexchange"]
    assert len(records) == 15  # 12 beer + 3 coffee survive LIMA's rules
    assert {r["domain"] for r in records} == {"beer.stackexchange.com", "coffee.stackexchange.com"}
    dumps = {
        d: _dump(shared_data / "stackexchange" / f"{d}-Posts.xml") for d in {r["domain"] for r in records}
    }
    for r in records:
        questions, answers = dumps[r["domain"]]
        qid = int(r["id"].rsplit("-", 1)[1])
        question = questions[qid]
        answer = next(a for a in answers[qid] if int(a["Id"]) == r["meta"]["answer_id"])
        # The top answer of its question (LIMA), with a score of at least 10, as the dump says.
        assert int(answer["Score"]) == max(int(a["Score"]) for a in answers[qid]) >= 10, r["id"]
        assert r["meta"]["score"] == int(answer["Score"]) and r["meta"]["question_score"] == int(
            question["Score"]
        )
        response = r["messages"][1]["content"]
        assert 1200 <= len(response) <= 4096, r["id"]
        prose_words = re.findall(r"[A-Za-z][A-Za-z'’]*", _without_code(response))
        assert not PRONOUNS & set(prose_words), (r["id"], PRONOUNS & set(prose_words))
        assert not any(p in _without_code(response).lower() for p in SITE_TALK), r["id"]
        assert not LINK.search(response), r["id"]
        assert "<p>" not in response and "&lt;" not in response
        assert "**" not in _without_code(response) and not re.search(r"^#+ ", response, re.M)  # LIMA markup
        if r["meta"]["prompt_from"] == "title":
            prompt = r["messages"][0]["content"]
            assert prompt == question["Title"].strip()
            assert prompt.endswith("?") or prompt.split()[0].lower() in QUESTION_WORDS, prompt
    counts = summary(lima_run)["counts"]
    se = counts["sources"]["stackexchange"]
    assert se["in"] == 663 + 225  # every question of both dumps is accounted for
    assert se["in"] == se["filtered_out"] + se["duplicates"] + se["candidates"]
    reasons = counts["reasons_by_source"]["stackexchange"]
    assert reasons["answer_score"] > 400 and reasons["first_person"] > 0 and reasons["too_short"] > 0
    assert counts["skipped_rows"]["tag_wiki"] == 58 + 20  # tag-wiki rows are not questions


def test_wikihow_both_layouts(lima_run):
    records = [r for r in read_jsonl(lima_run / "train.jsonl") if r["source"] == "wikihow"]
    prompts = [r["messages"][0]["content"] for r in records]
    assert len(records) > 2000
    assert all(p.startswith("How to ") and p.endswith("?") for p in prompts)
    assert "How to Remove Lint from Clothes?" in prompts  # per-step layout, subtitle pruned
    assert "How to get a MAC Address from an IP Remotely?" in prompts  # per-article layout
    lint = next(r for r in records if r["messages"][0]["content"] == "How to Remove Lint from Clothes?")
    assert lint["messages"][1]["content"].startswith("1. **Use a lint roller.** You can find them")
    for r in records:
        response = r["messages"][1]["content"]
        assert not URL.search(response)  # (one article teaches HTML: its literal <a> tags are content)
        assert "This article" not in response and "this wikiHow" not in response


def test_no_near_duplicates_survive(lima_run):
    counts = summary(lima_run)["counts"]
    # The per-article wikiHow file repeats some articles: the repeats are dropped, not kept twice.
    assert counts["sources"]["wikihow"]["duplicates"] >= 3
    prompts = [r["messages"][0]["content"].lower() for r in read_jsonl(lima_run / "train.jsonl")]
    assert len(prompts) == len(set(prompts))


def test_pre_code_block_is_kept(curate, shared_data):
    result, out = curate(
        "--input",
        str(shared_data / "stackexchange"),
        config=LIMA_YAML.replace("lima.yaml", "se_unfiltered.yaml"),
    )
    assert_ok(result)
    record = next(r for r in read_jsonl(out / "train.jsonl") if r["id"] == "coffee.stackexchange.com-349")
    response = record["messages"][1]["content"]
    assert "```\nWhere:\nC is Country \nP is Preparation" in response  # <pre><code>, fenced, lines kept
    assert response.count("```") % 2 == 0


def test_lima_fastchat_gives_1000_records_without_preamble(curate, shared_data):
    result, out = curate("--input", str(shared_data / "lima" / "lima_train_1k_fastchat.json"),
                         "selection.quotas=null", "dev.size=0")  # fmt: skip
    assert_ok(result)
    records = read_jsonl(out / "train.jsonl")
    assert len(records) == 1000
    assert {r["source"] for r in records} == {"lima"}
    for r in records:
        prompt = r["messages"][0]["content"]
        assert "### Instruction" not in prompt and not prompt.startswith("Below is an instruction"), r["id"]
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
    brain = next(r for r in records if r["id"] == "identity_0")
    assert brain["messages"][0]["content"].startswith("Can brain cells move?")


def test_same_seed_same_output_other_seed_differs(curate, shared_data):
    args = ("--input", str(shared_data / "stackexchange"), "--input", str(shared_data / "wikihow" / "wikihow_title_heading_paragraph.csv"),
            "selection.quotas={stem: 5, other: 10, wikihow: 40}", "dev.size=8")  # fmt: skip
    (r1, a), (r2, b), (r3, c) = curate(*args), curate(*args), curate(*args, "seed=7")
    for r in (r1, r2, r3):
        assert_ok(r)
    assert (a / "train.jsonl").read_bytes() == (b / "train.jsonl").read_bytes()
    assert (a / "dev.jsonl").read_bytes() == (b / "dev.jsonl").read_bytes()
    assert (a / "train.jsonl").read_bytes() != (c / "train.jsonl").read_bytes()
    train = read_jsonl(a / "train.jsonl")
    dev = read_jsonl(a / "dev.jsonl")
    assert len(dev) == 8 and len(train) == 10 + 40 - 0  # dev drawn first; train fills what is left
    assert not {r["id"] for r in train} & {r["id"] for r in dev}
