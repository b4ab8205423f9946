"""``lima train --data`` reads what ``lima curate`` reads; a file that is not training data says what to run."""

from __future__ import annotations

import json

import pytest

from lima.core.conversations import read_conversation_file
from lima.core.errors import RecordError

PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request. ### Instruction: "  # fmt: skip


def test_a_fastchat_json_array_is_training_data(tmp_path):
    path = tmp_path / "lima_train.json"
    path.write_text(json.dumps([
        {"id": "identity_0", "score": 0.0, "conversations": [
            {"from": "human", "value": PREAMBLE + "Can brain cells move?"}, {"from": "gpt", "value": "Yes."}]},
    ], indent=4))  # fmt: skip
    (record,) = read_conversation_file(path)
    assert record.id == "identity_0" and record.source == "lima"
    assert record.messages == [{"role": "user", "content": "Can brain cells move?"},
                               {"role": "assistant", "content": "Yes."}]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "source"),
    [
        ({"instruction": "Add", "input": "1 and 2", "output": "3"}, "alpaca"),
        (
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
            "sharegpt",
        ),
        ({"conversations": ["Hi", "Hello"], "source": "manual"}, "manual"),
        (
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
            "sharegpt",
        ),
    ],
)
def test_jsonl_formats(tmp_path, row, source):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    records = read_conversation_file(path)
    assert len(records) == 2 and records[0].source == source
    assert [m["role"] for m in records[0].messages] == ["user", "assistant"]


def test_prompts_only_says_so_and_names_the_command(tmp_path):
    path = tmp_path / "lima_test_300.jsonl"
    path.write_text(json.dumps({"conversations": ["Write a poem."], "source": "manual"}) + "\n")
    with pytest.raises(RecordError) as error:
        read_conversation_file(path)
    message = str(error.value)
    assert (
        "prompts only" in message and f"lima generate configs/generate/lima.yaml --prompts {path}" in message
    )


def test_a_raw_dump_names_the_curate_command(tmp_path):
    path = tmp_path / "reddit.jsonl"
    path.write_text(json.dumps({"title": "[WP] x", "comments": [{"body": "y", "score": 3}]}) + "\n")
    with pytest.raises(RecordError) as error:
        read_conversation_file(path)
    assert "a Reddit dump" in str(error.value)
    assert f"lima curate configs/curate/passthrough.yaml --input {path}" in str(error.value)


def test_a_record_without_an_answer_names_its_item(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""}]))
    with pytest.raises(RecordError, match=r"item 1: no assistant turn"):
        read_conversation_file(path)


def test_the_shared_lima_files(shared_data):
    records = read_conversation_file(shared_data / "lima" / "lima_train_1k_fastchat.json")
    assert len(records) == 1000 and all(not r.prompt.startswith("Below is") for r in records)
    with pytest.raises(RecordError, match="prompts only"):
        read_conversation_file(shared_data / "lima" / "lima_test_300.jsonl")
