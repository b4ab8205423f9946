"""``lima train --data`` trains on a LIMA/FastChat JSON array (what ``lima curate`` reads), not only records."""

from __future__ import annotations

import json

from tests.finetune.conftest import THREADS, records, train_args


def test_train_on_a_fastchat_json_array(cli, tiny_model_dir, tmp_path):
    rows = [
        {"id": r["id"], "conversations": [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]}
                                          for m in r["messages"] if m["role"] != "system"]}
        for r in records(4)
    ]  # fmt: skip
    data = tmp_path / "lima_train.json"
    data.write_text(json.dumps(rows, indent=4))  # a JSON array, pretty-printed: line 1 is "["
    out = tmp_path / "t"
    result = cli(*train_args(tiny_model_dir, data, None, out, "epochs=1"), env=THREADS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "manifest.json").read_text())["data_stats"]["train"]["examples"] == 4
