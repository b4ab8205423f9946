"""Pass 2 of the Stack Exchange reader: the byte scan gives the very records of the full streaming parse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lima.curation.config import StackExchangeFilters
from lima.curation.sources import posts_xml
from lima.curation.sources import stackexchange as se
from lima.curation.types import ShardCounts

RULES = {
    "lima": StackExchangeFilters(),
    "unfiltered": StackExchangeFilters(
        min_answer_score=None,
        min_chars=None,
        max_chars=None,
        no_first_person=False,
        no_references=False,
        self_contained_title=False,
    ),
}


def _read(path: Path, rules: StackExchangeFilters, monkeypatch, scan: bool):
    """(records, counts, how the rows were read) of one run, with the byte scan on or off."""
    served = {"scanned": 0, "full_parses": 0}
    scan_rows, rows = posts_xml.scan_rows, posts_xml.iter_rows

    def counting_scan(*args):
        for item in scan_rows(*args):
            served["scanned"] += 1
            yield item

    def counting_rows(*args):
        served["full_parses"] += 1
        return rows(*args)

    with monkeypatch.context() as patch:
        patch.setattr(posts_xml, "scan_rows", counting_scan if scan else lambda *args: iter(()))
        patch.setattr(posts_xml, "iter_rows", counting_rows)
        counts = ShardCounts()
        records = [
            (type(x).__name__, x.to_dict())
            for x in se.read_stackexchange(path, rules, 0, counts, "other", "en")
        ]
    return records, counts, served


@pytest.mark.parametrize("site", ["beer", "coffee"])
@pytest.mark.parametrize("rules", list(RULES))
def test_scan_and_full_parse_agree_on_a_real_dump(shared_data, monkeypatch, site, rules):
    path = shared_data / "stackexchange" / f"{site}.stackexchange.com-Posts.xml"
    fast, fast_counts, fast_served = _read(path, RULES[rules], monkeypatch, scan=True)
    full, full_counts, full_served = _read(path, RULES[rules], monkeypatch, scan=False)
    assert fast == full  # same records in the same order
    assert fast_counts == full_counts
    assert sum(kind == "Example" for kind, _ in fast) >= (3 if rules == "lima" else 200)
    # The scan served every wanted row: one full parse (pass 1) instead of two.
    assert fast_served["full_parses"] == 1 and full_served["full_parses"] == 2
    assert fast_served["scanned"] >= 2 * fast_counts.kept


def _odd_layout(dump: bytes) -> bytes:
    """The rows of ``dump`` three to a line, some over several lines, some with ``Id`` not first, some with
    a raw ``/>`` inside a value and some out of ``Id`` order: well-formed, but not the usual layout."""
    head = dump[: dump.index(b"<row")]
    rows = [line.strip() for line in dump.split(b"\n") if line.lstrip().startswith(b"<row")]
    out = []
    for k, row in enumerate(rows):
        if k % 7 == 1:
            row = re.sub(rb'^<row (Id="\d+") (PostTypeId="\d+")', rb"<row \2 \1", row)
        if k % 11 == 2:
            row = row[:-2] + b'Note="a/>b" />'
        if k % 5 == 3:
            row = row.replace(b"&#xA;", b"\n")  # a raw newline in a value (read as a space)
        out.append(row)
    for k in range(0, len(out) - 1, 13):
        out[k], out[k + 1] = out[k + 1], out[k]
    return head + b"".join(row + (b"\n" if k % 3 == 2 else b" ") for k, row in enumerate(out)) + b"</posts>\n"


@pytest.mark.parametrize("rules", list(RULES))
def test_scan_and_full_parse_agree_when_rows_are_not_one_per_line(shared_data, tmp_path, monkeypatch, rules):
    dump = (shared_data / "stackexchange" / "beer.stackexchange.com-Posts.xml").read_bytes()
    path = tmp_path / "beer.stackexchange.com-Posts.xml"
    path.write_bytes(_odd_layout(dump))
    lines = path.read_bytes().split(b"\n")
    assert (
        sum(line.count(b"<row") > 1 for line in lines) > 500
        and sum(b"<row" not in line for line in lines) > 100
    )
    fast, fast_counts, fast_served = _read(path, RULES[rules], monkeypatch, scan=True)
    full, full_counts, _ = _read(path, RULES[rules], monkeypatch, scan=False)
    # Rows the scan cannot place come from the full parse afterwards, so only the order may differ.
    assert sorted(map(json.dumps, fast)) == sorted(map(json.dumps, full))
    assert fast_counts == full_counts
    assert fast_served["scanned"] > 0 and fast_served["full_parses"] == 2  # both paths took part
    assert fast_counts.rows_in == 663 and fast_counts.kept >= (3 if rules == "lima" else 200)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<posts>', (True, False)),
        (b"<posts>", (True, False)),
        (b'<?xml version="1.0"?><!-- a dump --><posts>', (True, False)),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<posts>', (False, False)),
        (b'<?xml version="1.0"?>\n<!DOCTYPE posts [<!ENTITY b "beer">]>\n<posts>', (True, True)),
        ('<?xml version="1.0" encoding="utf-16"?><posts>'.encode("utf-16"), (False, True)),
        (b"<?xml version='1.0'?>" + b" " * (70 << 10) + b"<posts>", (True, True)),  # prolog not all read
    ],
)
def test_prolog_decides_whether_rows_parse_alone(tmp_path, head, expected):
    path = tmp_path / "Posts.xml"
    path.write_bytes(head + b"</posts>\n")
    assert posts_xml.prolog(path) == expected
