import gzip
import json

import pytest

from lima.core.errors import RecordError
from lima.core.io import file_sha256
from lima.core.record import Example, iter_record_results, load_records, records_to_dataset, write_records


def _example(i: int = 0) -> Example:
    return Example(
        id=f"ex-{i}",
        source="manual",
        domain="cooking",
        messages=[
            {"role": "user", "content": "How to boil an egg?"},
            {"role": "assistant", "content": "Boil it."},
        ],
        meta={"score": i},
    )


def test_roundtrip_and_hash(tmp_path):
    path = tmp_path / "train.jsonl"
    assert write_records(path, [_example(0), _example(1)]) == 2
    records = load_records(path)
    assert [r.to_dict() for r in records] == [_example(0).to_dict(), _example(1).to_dict()]
    assert records[0].prompt == "How to boil an egg?" and records[0].response == "Boil it."
    digest = file_sha256(path)
    write_records(path, [_example(0), _example(1)])
    assert file_sha256(path) == digest


def test_gzip_roundtrip(tmp_path):
    path = tmp_path / "rejected.jsonl.gz"
    write_records(path, [_example(3)])
    with gzip.open(path, "rt") as fh:
        assert json.loads(fh.readline())["id"] == "ex-3"
    assert load_records(path)[0].id == "ex-3"


def test_invalid_lines_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_example().to_dict())
    path.write_text(
        good + "\n"
        + "\n"  # blank lines are fine
        + '{"id": "x", "source": "manual", "messages": [{"role": "bot", "content": "hi"}]}\n'
        + "{not json\n"
        + '{"id": "y", "messages": []}\n'
    )  # fmt: skip
    results = list(iter_record_results(path))
    assert isinstance(results[0], Example)
    messages = [str(r) for r in results[1:]]
    assert messages[0].startswith(f"{path}:3: ") and "messages[0].role: 'bot'" in messages[0]
    assert messages[0].endswith("messages: needs at least one user turn")
    assert messages[1].startswith(f"{path}:4: not valid JSON")
    assert (
        f"{path}:5: " in messages[2]
        and "source: required" in messages[2]
        and "messages: required" in messages[2]
    )
    with pytest.raises(RecordError, match=r"bad.jsonl:3: messages\[0\].role"):
        load_records(path)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RecordError, match="holds no records"):
        load_records(empty)
    with pytest.raises(RecordError, match="no such file"):
        load_records(tmp_path / "missing.jsonl")


def test_write_is_atomic(tmp_path):
    path = tmp_path / "train.jsonl"
    write_records(path, [_example(0)])

    def broken():
        yield _example(1)
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_records(path, broken())
    assert [r.id for r in load_records(path)] == ["ex-0"]  # the old file is intact
    assert list(tmp_path.iterdir()) == [path]  # and no temp file is left behind


def test_loads_into_datasets(tmp_path):
    path = tmp_path / "train.jsonl"
    write_records(path, [_example(0), _example(1)])
    dataset = records_to_dataset(path)
    assert dataset.num_rows == 2
    assert dataset[1]["messages"][1] == {"role": "assistant", "content": "Boil it."}
    assert json.loads(dataset[1]["meta"]) == {"score": 1}
