"""wikiHow steps that held a URL keep its host name; a step still cut short drops its article, counted."""

from __future__ import annotations

import csv
from collections import Counter

from tests.curation.conftest import assert_ok, read_jsonl, summary

WIKIHOW_YAML = "configs/curate/wikihow.yaml"


def _csv(path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "result"])
        writer.writerows(rows)


def test_url_as_text():
    from lima.curation.sources.wikihow import url_as_text

    assert url_as_text("https://www.facebook.com/") == "facebook.com"
    assert url_as_text("http://www.paypal.com/login") == "paypal.com/login"
    assert url_as_text("https://pdfjoiner.com.") == "pdfjoiner.com."
    assert url_as_text("https://www.sprint.com/en/login.html?next=1") == "sprint.com"
    assert url_as_text("www.example.org/a,") == "example.org/a,"


def test_link_steps_are_repaired_and_cut_steps_dropped(curate, tmp_path):
    path = tmp_path / "wikihow_steps.csv"
    _csv(path, [
        ("Create Ads on Facebook", "1.  Go to https://www.facebook.com/ and log in.\n2. Click Create.\n3. Click Ad."),
        ("Merge PDF Files", "1. Go to https://pdfjoiner.com.\n2. Click Upload.\n3. Click Merge."),
        ("Open a Site", "1. Go to.\n2. Click the button.\n3. Done."),  # cut in the dump itself
        ("Zoom in on Maps", "1. Open Maps.\n2. Navigate to and double-click the place.\n3. Spread two fingers."),
    ])  # fmt: skip
    result, out = curate("--input", str(path), "dev.size=0", config=WIKIHOW_YAML)
    assert_ok(result)
    answers = {
        r["messages"][0]["content"]: r["messages"][1]["content"] for r in read_jsonl(out / "train.jsonl")
    }
    assert answers["How to create Ads on Facebook?"].startswith("1. Go to facebook.com and log in.")
    assert answers["How to merge PDF Files?"].startswith("1. Go to pdfjoiner.com.\n")
    assert "How to zoom in on Maps?" in answers  # "Navigate to and double-click" is whole, not cut
    assert "How to open a Site?" not in answers
    rejected = read_jsonl(out / "rejected.jsonl.gz")
    assert Counter(r["reason"] for r in rejected) == {"cut_step": 1}
    assert "Go to." in rejected[0]["detail"]
    assert summary(out)["counts"]["repairs"] == {"url_as_host_name": 2}


def test_no_shared_wikihow_answer_starts_with_a_cut_step(curate, shared_data):
    result, out = curate("--input", str(shared_data / "wikihow" / "wikihow_title_steps.csv"), "dev.size=0",
                         "selection.quotas={wikihow: 20000}", config=WIKIHOW_YAML)  # fmt: skip
    assert_ok(result)
    train = read_jsonl(out / "train.jsonl")
    cut = [
        r["id"]
        for r in train
        if r["messages"][1]["content"].split("\n")[0].rstrip(" .") in ("1. Go to", "1. Visit")
    ]
    assert not cut
    assert summary(out)["counts"]["repairs"]["url_as_host_name"] > 300
