"""Bad input: per-record problems are counted; whole-file problems exit 2 naming the file, leaving no train.jsonl."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from tests.curation.conftest import ROOT, assert_ok, summary

UNFILTERED = str(ROOT / "configs" / "curate" / "se_unfiltered.yaml")
ANSWER = "&lt;p&gt;Steep the leaves for three minutes in water just off the boil.&lt;/p&gt;"


def _posts(rows: str) -> str:
    return f'\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n{rows}</posts>\n'


ROWS = (
    '<row Id="1" PostTypeId="1" Score="5" Title="How long should green tea steep?" Body="&lt;p&gt;Q&lt;/p&gt;" Tags="&lt;tea&gt;&lt;steeping&gt;" />\n'
    f'<row Id="2" PostTypeId="2" ParentId="1" Score="3" Body="{ANSWER}" />\n'
    '<row Id="3" PostTypeId="1" Score="2" Title="What is matcha made from?" Tags="|tea|matcha|" />\n'  # no Body
    f'<row Id="10" PostTypeId="2" ParentId="3" Score="4" Body="{ANSWER}" />\n'
    f'<row Id="4" PostTypeId="2" ParentId="99" Score="9" Body="{ANSWER}" />\n'  # question 99 is missing
    '<row Id="5" PostTypeId="5" Body="tag wiki" />\n'
    '<row Id="6" PostTypeId="7" />\n'
    '<row Id="7" PostTypeId="1" Score="1" Title="Why is oolong partly oxidised?" Body="&lt;p&gt;Q&lt;/p&gt;" />\n'
    f'<row Id="8" PostTypeId="2" ParentId="7" Score="2" Body="{ANSWER.replace("three", "four")}" />\n'
    '<row Id="9" PostTypeId="2" ParentId="7" Score="2" Body="&lt;p&gt;Accepted tie winner.&lt;/p&gt;" />\n'
)  # fmt: skip


@pytest.fixture
def site(tmp_path) -> Path:
    path = tmp_path / "tea.stackexchange.com-Posts.xml"
    path.write_text(
        _posts(ROWS.replace('Id="7" PostTypeId="1"', 'Id="7" PostTypeId="1" AcceptedAnswerId="9"'))
    )
    return path


def _assert_exit_2(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    line = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in line, line


def test_per_record_problems_are_counted(curate, site):
    result, out = curate("--input", str(site), config=UNFILTERED)
    assert_ok(result)
    counts = summary(out)["counts"]
    assert counts["reasons_by_source"]["stackexchange"] == {"missing_body": 1}
    assert counts["skipped_rows"] == {"answers_to_missing_question": 1, "tag_wiki": 1, "placeholder": 1}
    train = {r["id"]: r for r in map(json.loads, (out / "train.jsonl").read_text().splitlines())}
    assert set(train) == {"tea.stackexchange.com-1", "tea.stackexchange.com-7"}
    assert (
        train["tea.stackexchange.com-7"]["messages"][1]["content"] == "Accepted tie winner."
    )  # tie -> accepted
    assert train["tea.stackexchange.com-1"]["meta"]["tags"] == ["tea", "steeping"]


def test_truncated_dump_exits_2_and_leaves_nothing_that_looks_complete(curate, shared_data, tmp_path):
    data = (shared_data / "stackexchange" / "beer.stackexchange.com-Posts.xml").read_bytes()
    truncated = tmp_path / "beer.stackexchange.com-Posts.xml"
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "run"
    ok, _ = curate(
        "--input", str(shared_data / "stackexchange" / "coffee.stackexchange.com-Posts.xml"), out=out
    )
    assert_ok(ok)
    assert (out / "train.jsonl").exists()
    result, _ = curate("--input", str(truncated), out=out)  # rerun into the same folder, now failing
    _assert_exit_2(result, str(truncated), "line ", "truncated")
    for name in ("train.jsonl", "dev.jsonl", "rejected.jsonl.gz", "report.html", "report.md"):
        assert not (out / name).exists(), name
    assert not list(out.glob(".*.tmp"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and str(truncated) in manifest["error"]


def test_xml_that_is_not_utf8_exits_2(curate, tmp_path):
    path = tmp_path / "tea.stackexchange.com-Posts.xml"
    path.write_bytes(_posts(ROWS).encode().replace(b"three", b"thr\xff\xfee"))
    result, out = curate("--input", str(path), config=UNFILTERED)
    _assert_exit_2(result, str(path), "line 4", "Invalid bytes")
    assert not (out / "train.jsonl").exists()


def test_csv_and_jsonl_bad_rows_are_counted(curate, tmp_path):
    csv_path = tmp_path / "wh.csv"
    csv_path.write_bytes(
        b"title,result\n"
        b'Brew Tea,"1. Boil water.\n2. Steep the tea."\n'
        b'Too,Many,Columns,Here\n'
        b'Fold a Shirt,"1. Lay it flat.\n2. Fold the sleeves in.\n3. Fold in half."\n'
        b'Bad Bytes \xff,"1. x.\n2. y."\n'
    )  # fmt: skip
    jsonl = tmp_path / "own.jsonl"
    jsonl.write_bytes(
        b'{"id": "a", "source": "manual", "messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}\n'
        b"{not json\n"
        b'{"id": "b", "source": "manual", "messages": [{"role": "robot", "content": "x"}]}\n'
        b'{"id": "c", "source": "manual", "messages": [{"role": "user", "content": "\xff"}]}\n'
    )  # fmt: skip
    result, out = curate(
        "--input", str(csv_path), "--input", str(jsonl), "selection.quotas=null", "dev.size=0",
        "filters.wikihow.min_chars=null",
    )  # fmt: skip
    assert_ok(result)
    counts = summary(out)["counts"]
    assert counts["reasons_by_source"]["wikihow"] == {"malformed_row": 1, "not_utf8": 1}
    assert counts["reasons_by_source"]["records"] == {"bad_json": 1, "bad_record": 1, "not_utf8": 1}
    assert counts["train"] == 3


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.jsonl", b"", "empty file"),
        ("tea.stackexchange.com-Posts.xml", b"", "empty file"),
        ("cols.csv", b"name,body\nx,y\n", "matches no wikiHow layout"),
        ("site.7z", b"this is not a 7z archive at all", "not a readable 7z archive"),
        ("odd.jsonl", b'{"foo": 1}\n', "cannot tell the record format"),
        (
            "task1_no_instances.json",
            b'{\n  "Definition": ["Do it."],\n  "Positive Examples": []\n}\n',
            "lacks Instances",
        ),
        (
            "task2_truncated.json",
            b'{\n  "Definition": ["Do it."],\n  "Instances": [{"input": "a", ',
            "not valid JSON",
        ),
    ],
)
def test_whole_file_problems_exit_2(curate, tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    result, out = curate("--input", str(path))
    _assert_exit_2(result, str(path), needle)
    assert not (out / "train.jsonl").exists()


def test_directory_without_dumps_and_missing_path_exit_2(curate, tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("no dumps here")
    result, _ = curate("--input", str(empty))
    _assert_exit_2(result, str(empty), "holds no dumps")
    result, _ = curate("--input", str(tmp_path / "missing"))
    _assert_exit_2(result, "missing", "no such file or directory")
    result, _ = curate("selection.temprature=2")
    _assert_exit_2(result)
    assert "did you mean temperature" in result.stderr


def test_7z_site_archive_is_read_inside(curate, site, tmp_path):
    import py7zr

    archive = tmp_path / "tea.stackexchange.com.7z"
    with py7zr.SevenZipFile(archive, "w") as z:
        z.write(site, "Posts.xml")
    result, out = curate("--input", str(archive), config=UNFILTERED)
    assert_ok(result)
    train = (out / "train.jsonl").read_text().splitlines()
    assert {json.loads(line)["domain"] for line in train} == {"tea.stackexchange.com"}
    assert len(train) == 2


# -- a stage that produces nothing is not a success (issue 9.5) ------------------------------------


def test_zero_training_examples_exits_2_with_drop_table_and_nearest_fix(curate, site):
    result, out = curate("--input", str(site))  # lima.yaml: every answer here is short and low-scored
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    err = result.stderr
    assert "no training examples" in err
    assert re.search(r"^\s+answer_score\s+3$", err, re.M), err  # the drop table: reason -> count
    last = err.strip().splitlines()[-1]
    assert last.startswith("nearest fix: a looser filter: filters.stackexchange.min_answer_score=null"), last
    assert not (out / "train.jsonl").exists() and not (out / "dev.jsonl").exists()
    assert summary(out)["counts"]["train"] == 0  # the report and counts are there to see why
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"


def test_dev_never_empties_the_training_set(curate, shared_data):
    """The reproduction of issue 9: LIMA's filters on the two small real sites leave a few candidates."""
    result, out = curate("--input", str(shared_data / "stackexchange"))
    assert_ok(result)
    counts = summary(out)["counts"]
    candidates = counts["sources"]["stackexchange"]["candidates"]
    assert 0 < candidates < 500  # dev.size=50 is more than 10% of them
    assert counts["dev_capped"] == {"requested": 50, "cap": candidates // 10, "candidates": candidates,
                                    "max_fraction": 0.1}  # fmt: skip
    # The one group they feed is short of its quota of 200: it gives nothing to dev (issue 18).
    assert counts["dev"] == 0 and counts["train"] == candidates
    assert counts["dev_short"]["drawn"] == 0
    for text in (result.stdout, (out / "report.md").read_text(), (out / "report.html").read_text()):
        assert "dev capped at" in text and "gives dev only what it has beyond its training quota" in text


# -- bad input that used to abort a shard or drop a file (issue 9.6) -------------------------------


def test_reddit_record_with_non_numeric_score_is_a_counted_skip(curate, tmp_path):
    def post(i: int, score: object) -> dict:
        return {"id": f"p{i}", "title": f"[WP] Prompt number {i}", "subreddit": "WritingPrompts", "selftext": "",
                "comments": [{"body": f"Story {i}: the lighthouse kept its promise.", "score": score},
                             {"body": "Short.", "score": 1}]}  # fmt: skip

    path = tmp_path / "wp.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in (post(1, 40), post(2, "lots"), post(3, "25"))))
    result, out = curate("--input", str(path), "selection.quotas=null", "dev.size=0")
    assert_ok(result)
    counts = summary(out)["counts"]
    assert counts["train"] == 2 and counts["reasons_by_source"]["reddit"] == {"bad_score": 1}
    rejected = [json.loads(line) for line in gzip.open(out / "rejected.jsonl.gz", "rt")]
    (bad,) = [r for r in rejected if r["reason"] == "bad_score"]
    assert bad["id"] == "p2" and "comments[0].score: 'lots' is not a number" in bad["detail"]
    assert "bad_score" in (out / "report.md").read_text()  # shown in the report's drop table


def test_json_array_with_byte_order_mark_is_read(curate, tmp_path):
    rows = [
        {"instruction": f"Name colour number {i}.", "output": f"Colour {i} is a shade of blue."}
        for i in range(5)
    ]
    path = tmp_path / "alpaca_bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows, indent=2).encode())
    result, out = curate("--input", str(path), "selection.quotas=null", "dev.size=0", "dedup.enabled=false")
    assert_ok(result)
    counts = summary(out)["counts"]
    assert counts["train"] == 5 and counts["reasons"] == {}
