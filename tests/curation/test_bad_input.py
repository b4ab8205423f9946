"""Bad input: per-record problems are counted; whole-file problems exit 2 naming the file, leaving no train.jsonl."""

from __future__ import annotations

import json
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
        "--input", str(csv_path), "--input", str(jsonl), "selection.quotas=null", "dev.size=0"
    )
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
