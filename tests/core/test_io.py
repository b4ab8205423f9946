import re

import pytest

from lima.core.errors import LimaError
from lima.core.io import iter_jsonl_objects


def test_jsonl_objects_with_line_numbers_bom_and_blank_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": 1}\n\n{"id": 2}\n')
    assert list(iter_jsonl_objects(path)) == [(1, {"id": 1}), (3, {"id": 2})]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": 1}\n[1, 2]\n', "a.jsonl:2: expected a JSON object, got list"),
        (b'{"id": 1}\n{"id": \n', "a.jsonl:2: not valid JSON"),
        (b'{"id": 1}\n{"id": "caf\xe9"}\n', "not UTF-8 text"),
    ],
)
def test_bad_jsonl_input_is_one_line_naming_the_place(tmp_path, content, message):
    path = tmp_path / "a.jsonl"
    path.write_bytes(content)
    with pytest.raises(LimaError, match=re.escape(message)):
        list(iter_jsonl_objects(path))


def test_judgment_and_label_readers_report_bad_bytes_and_shapes(tmp_path):
    """`lima summarize` and `lima agreement` read through it: no bare UnicodeDecodeError/AttributeError."""
    from lima.eval.agreement import read_labels
    from lima.eval.summary import read_judgments

    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"id": "x", "verdict": "A", "label": "A"}\n{"id": "y", "label": "caf\xe9"}\n')
    with pytest.raises(LimaError, match="not UTF-8"):
        read_judgments(path)
    with pytest.raises(LimaError, match="not UTF-8"):
        read_labels(path, "label")
    path.write_text('["A"]\n')
    with pytest.raises(LimaError, match=r"j\.jsonl:1: expected a JSON object"):
        read_judgments(path)
    with pytest.raises(LimaError, match="judgments file not found"):
        read_judgments(tmp_path / "missing.jsonl")
