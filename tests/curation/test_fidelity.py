"""Curation follows LIMA (issue 11 A): wikiHow prompts, Stack Exchange ranking, what the HTML conversion keeps,
the Roman numeral I, wikiHow category sampling and the Super-Natural Instructions slot."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

import pytest

from lima.core.config import load_config
from lima.core.record import Example
from lima.curation.config import CurateConfig
from lima.curation.filters import has_first_person
from lima.curation.html import html_to_markdown
from lima.curation.select import order_domain
from lima.curation.sources.wikihow import prompt_from_title
from tests.curation.conftest import LIMA_YAML, ROOT, assert_ok, read_jsonl, summary

NATINST = ROOT / "tests" / "curation" / "data" / "natinst"


# -- wikiHow titles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "prompt"),
    [("Root the LG G3", "How to root the LG G3?"),
     ("Activate Windows 8", "How to activate Windows 8?"),
     ("Download, Install, and Use Code::Blocks", "How to download, Install, and Use Code::Blocks?"),
     ("Convert 12:00 to 24 Hour Time", "How to convert 12:00 to 24 Hour Time?"),
     ("Install Windows 3.1", "How to install Windows 3.1?"),
     ("Add DLC to Xbox 360", "How to add DLC to Xbox 360?"),
     ("How to Remove Lint from Clothes: 14+ Easy Methods", "How to Remove Lint from Clothes?"),
     ("How to Boil Cabbage: 12 Steps (with Pictures) - wikiHow", "How to Boil Cabbage?"),
     ("How to Sell Books on Amazon: A Quick & Easy Guide", "How to Sell Books on Amazon?"),
     ("Kill Flying Termites: 3 Ways to Get Rid of Alates and Their Colony", "How to kill Flying Termites?"),
     ("13 Ways to Prepare for Each School Day - wikiHow", "How to prepare for Each School Day?"),
     ("3 Simple Ways to Fix a Cigarette Lighter in a Car - wikiHow", "How to fix a Cigarette Lighter in a Car?"),
     ("Simple Ways to Clean Painted Wood: 10 Steps (with Pictures)", "How to clean Painted Wood?"),
     ("3 Way Call on Skype", "How to 3 Way Call on Skype?")],
)  # fmt: skip
def test_wikihow_title_keeps_numbers_and_colons_that_are_content(title, prompt):
    assert prompt_from_title(title) == prompt


def test_wikihow_index_is_stripped_only_where_the_layout_glues_one_on():
    assert (
        prompt_from_title("How to Be an Organized Artist1", glued_index=True)
        == "How to Be an Organized Artist?"
    )
    assert prompt_from_title("How to Be an Organized Artist1") == "How to Be an Organized Artist1?"
    # In wikihowAll a number after a space or a capital is the title's own ("Windows 8", "LG G3").
    assert prompt_from_title("How to Activate Windows 8", glued_index=True) == "How to Activate Windows 8?"
    assert prompt_from_title("How to Root the LG G3", glued_index=True) == "How to Root the LG G3?"


def test_real_wikihow_titles_keep_their_numbers(shared_data):
    """Every title of the per-article CSV without a subtitle keeps all of its digits and colons."""
    with open(shared_data / "wikihow" / "wikihow_title_steps.csv", encoding="utf-8", newline="") as fh:
        titles = {row["title"].strip() for row in csv.DictReader(fh)}
    plain = [t for t in titles if not re.search(r"(?<!:):\s", t)]
    assert len(plain) > 10_000
    changed = [t for t in plain if re.findall(r"[\d:]", t) != re.findall(r"[\d:]", prompt_from_title(t))]
    assert changed == []
    assert sum(bool(re.search(r"\d", t)) for t in plain) > 100  # titles with numbers are really covered


# -- Stack Exchange ranking --------------------------------------------------------------------


def _qa(qid: int, q_score: int, a_score: int) -> Example:
    return Example(
        id=f"site-{qid}",
        source="stackexchange",
        domain="site",
        messages=[{"role": "user", "content": "q?"}, {"role": "assistant", "content": "a"}],
        meta={"score": a_score, "question_score": q_score},
    )


def test_score_order_ranks_questions_then_answers():
    items = [_qa(1, 5, 100), _qa(2, 50, 11), _qa(3, 50, 30), _qa(4, 20, 40)]
    assert [e.id for e in order_domain(items, "score", 0)] == ["site-3", "site-2", "site-4", "site-1"]
    by_answer = order_domain(items, "score", 0, score_by="answer")
    assert [e.id for e in by_answer] == ["site-1", "site-4", "site-3", "site-2"]


LONG = " ".join(["Steep the leaves in water just off the boil and taste it after two minutes."] * 20)


def _site(tmp_path, questions: list[tuple[int, int, int]]):
    """A Posts.xml with one long answer per question: (question id, question score, answer score)."""
    rows = []
    for qid, q_score, a_score in questions:
        title = f"How long should tea number {qid} steep?"
        rows.append(
            f'<row Id="{qid}" PostTypeId="1" Score="{q_score}" Title="{title}" Body="&lt;p&gt;Q&lt;/p&gt;" />'
        )
        rows.append(
            f'<row Id="{qid + 1000}" PostTypeId="2" ParentId="{qid}" Score="{a_score}" Body="&lt;p&gt;{LONG} {qid}&lt;/p&gt;" />'
        )
    path = tmp_path / "tea.stackexchange.com-Posts.xml"
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "\n".join(rows) + "\n</posts>\n")
    return path


def test_lima_takes_the_highest_scoring_questions(curate, tmp_path):
    site = _site(tmp_path, [(1, 5, 100), (2, 50, 11), (3, 20, 40)])
    common = ("--input", str(site), "selection.quotas={other: 1}", "dev.size=0", "dedup.enabled=false",
              "filters.stackexchange.prompt_from=title")  # fmt: skip
    result, out = curate(*common)
    assert_ok(result)
    assert [r["id"] for r in read_jsonl(out / "train.jsonl")] == ["tea.stackexchange.com-2"]  # question 50
    result, out = curate(*common, "selection.score_by=answer")
    assert_ok(result)
    assert [r["id"] for r in read_jsonl(out / "train.jsonl")] == ["tea.stackexchange.com-1"]  # answer 100


# -- what the HTML conversion keeps -------------------------------------------------------------

RICH = (
    "<h2>Brewing</h2><p>Use <strong>fresh</strong> beans and <em>soft</em> water, <code>ratio_1</code>.</p>"
    "<blockquote><p>Grind just before brewing.</p></blockquote>"
    "<table><tr><th>grind</th><th>time</th></tr><tr><td>fine</td><td>25 s</td></tr></table>"
    "<ul><li>kettle</li><li>scale</li></ul><ol><li>Heat.</li><li>Pour.</li></ol>"
    "<pre><code>brew --ratio 16\n</code></pre><hr><p>Enjoy.</p>"
)


def test_lima_markup_keeps_code_and_lists_and_removes_the_rest():
    text = html_to_markdown(RICH, markup="lima")
    assert "```\nbrew --ratio 16\n```" in text and "`ratio_1`" in text  # code kept
    assert "- kettle\n- scale" in text and "1. Heat.\n2. Pour." in text  # lists kept
    for marker in ("#", "**", "*soft*", "_soft_", "|", "> ", "---"):
        assert marker not in text, (marker, text)
    for words in ("Brewing", "Use fresh beans and soft water", "Grind just before brewing.", "fine", "25 s"):
        assert words in text, (words, text)
    assert "grind time" in text.replace("\t", " ") or "grind, time" in text  # a table row stays one line
    rich = html_to_markdown(RICH, markup="markdown")
    assert "## Brewing" in rich and "**fresh**" in rich and "> Grind" in rich
    assert re.search(r"\| fine +\| 25 s \|", rich)


def test_lima_yaml_uses_lima_markup_by_default():
    config = load_config(LIMA_YAML, CurateConfig, [])
    assert config.filters.stackexchange.markup == "lima"
    assert CurateConfig().filters.stackexchange.markup == "lima"


# -- the Roman numeral I -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("A Type I error rejects a true null hypothesis.", False), ("World War I ended in 1918.", False),
     ("Part I covers the set-up.", False), ("Charles I of England was beheaded.", False),
     ("Phases I and II of the trial.", False), ("Compare I, II and III.", False),
     ("The I/O scheduler decides.", False), ("type I and type II errors", False),
     ("I think a Type I error is worse.", True), ("In part I explain the set-up.", True),
     ("World War I, I think, changed it.", True), ("Yesterday I tried it.", True)],
)  # fmt: skip
def test_roman_numeral_i_is_not_first_person(text, expected):
    assert has_first_person(text) is expected


# -- wikiHow sampling -------------------------------------------------------------------------


def test_wikihow_samples_a_category_uniformly_then_an_article(curate, tmp_path):
    sizes = {"Food": 2000, "Pets": 20, "Travel": 20}
    path = tmp_path / "wikihow_categories.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "result", "category"])
        for category, n in sizes.items():
            for i in range(n):
                writer.writerow([f"Do {category} Thing {i}", "1. Start here.\n2. Finish there.", category])
    result, out = curate("--input", str(path), "selection.quotas={wikihow: 30}", "dev.size=0",
                         "dedup.enabled=false", "filters.wikihow.min_chars=null")  # fmt: skip
    assert_ok(result)
    got = Counter(r["domain"] for r in read_jsonl(out / "train.jsonl"))
    assert sum(got.values()) == 30
    # Uniform over 3 categories: ~10 each. τ = 3 over categories would give Food ~21.
    assert got["Food"] <= 16 and got["Pets"] >= 5 and got["Travel"] >= 5, got


# -- Super-Natural Instructions ---------------------------------------------------------------


def test_lima_yaml_quotas_add_up_to_1000_with_50_natinst():
    quotas = load_config(LIMA_YAML, CurateConfig, []).selection.quotas
    assert quotas["natinst"] == 50 and sum(quotas.values()) == 1000


def test_natural_instructions_tasks_give_one_instance_each(curate):
    result, out = curate("--input", str(NATINST), "selection.quotas={natinst: 50}", "dev.size=0")
    assert_ok(result)
    train = {r["domain"]: r for r in read_jsonl(out / "train.jsonl")}
    assert set(train) == {"task9001_excerpt_sentence_paraphrasing", "task9002_excerpt_news_summarization"}
    tasks = {p.stem: json.loads(p.read_text()) for p in NATINST.glob("*.json")}
    for name, record in train.items():
        task = tasks[name]
        definition = (
            task["Definition"] if isinstance(task["Definition"], str) else "\n".join(task["Definition"])
        )
        instance = next(i for i in task["Instances"] if record["id"] == f"natinst-{i['id']}")
        prompt, response = record["messages"][0]["content"], record["messages"][1]["content"]
        assert prompt == f"{definition}\n\n{instance['input']}"
        assert response == instance["output"][0]
        assert record["source"] == "natinst" and record["meta"]["group"] == "natinst"
    reasons = summary(out)["counts"]["reasons_by_source"]["natinst"]
    assert reasons == {"category": 1, "language": 1}  # the classification task and the Spanish one
    again, out2 = curate("--input", str(NATINST), "selection.quotas={natinst: 50}", "dev.size=0", "seed=3")
    assert_ok(again)
    ids = {r["id"] for r in read_jsonl(out2 / "train.jsonl")}
    assert len(ids) == 2  # still one instance per task, drawn with the seed
