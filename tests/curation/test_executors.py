"""Shards on worker processes, completion markers on rerun, and the Dask engine on a LocalCluster."""

from __future__ import annotations

import json

import pytest

from tests.curation.conftest import assert_ok, read_jsonl, summary


@pytest.fixture
def inputs(shared_data, tmp_path):
    """Two Stack Exchange sites, a wikiHow file and a JSONL split into several byte-range shards."""
    lima = tmp_path / "lima.jsonl"
    fastchat = json.loads((shared_data / "lima" / "lima_train_1k_fastchat.json").read_text())
    lima.write_text("".join(json.dumps(r) + "\n" for r in fastchat[:300]))
    return ["--input", str(shared_data / "stackexchange"), "--input",
            str(shared_data / "wikihow" / "wikihow_title_heading_paragraph.csv"), "--input", str(lima),
            "shard_bytes=262144", "selection.quotas={other: 10, wikihow: 30, lima: 40}", "dev.size=10"]  # fmt: skip


def test_local_workers_skip_finished_shards_and_dask_gives_the_same_output(curate, inputs, tmp_path):
    result, local = curate(*inputs, "workers=2", out=tmp_path / "local")
    assert_ok(result)
    shards = summary(local)["counts"]["shards"]
    ranges = -(-(tmp_path / "lima.jsonl").stat().st_size // 262144)
    assert ranges >= 3
    assert len(shards) == 2 + 1 + ranges  # two sites, one CSV, the JSONL in 256 KiB byte ranges
    assert not any(s["skipped"] for s in shards)
    assert (
        sum(s["rows_in"] for s in shards if s["format"] == "fastchat") == 300
    )  # every line in exactly one range
    first = (local / "train.jsonl").read_bytes()

    result, _ = curate(*inputs, "workers=2", out=tmp_path / "local")  # rerun: every shard is finished
    assert_ok(result)
    assert all(s["skipped"] for s in summary(local)["counts"]["shards"])
    assert (local / "train.jsonl").read_bytes() == first

    marker = next((local / "shards").glob("coffee*/.done"))
    marker.unlink()  # as if that shard had died half-way
    result, _ = curate(*inputs, "workers=2", out=tmp_path / "local")
    assert_ok(result)
    redone = [s for s in summary(local)["counts"]["shards"] if not s["skipped"]]
    assert [s["path"].rsplit("/", 1)[-1] for s in redone] == ["coffee.stackexchange.com-Posts.xml"]
    assert (local / "train.jsonl").read_bytes() == first

    result, dask = curate(*inputs, "executor=dask", "workers=2", out=tmp_path / "dask")
    assert_ok(result)
    assert (dask / "train.jsonl").read_bytes() == first
    assert (dask / "dev.jsonl").read_bytes() == (local / "dev.jsonl").read_bytes()
    assert sorted(map(json.dumps, read_jsonl(dask / "rejected.jsonl.gz"))) == sorted(
        map(json.dumps, read_jsonl(local / "rejected.jsonl.gz"))
    )
    assert json.loads((dask / "manifest.json").read_text())["config"]["executor"] == "dask"


def test_a_worker_failure_ends_the_run_with_one_line(curate, shared_data, tmp_path):
    data = (shared_data / "stackexchange" / "beer.stackexchange.com-Posts.xml").read_bytes()
    folder = tmp_path / "dumps"
    folder.mkdir()
    (folder / "beer.stackexchange.com-Posts.xml").write_bytes(data[:1_000_000])
    (folder / "coffee.stackexchange.com-Posts.xml").write_bytes(
        (shared_data / "stackexchange" / "coffee.stackexchange.com-Posts.xml").read_bytes()
    )
    for executor in ("local", "dask"):
        result, out = curate("--input", str(folder), f"executor={executor}", "workers=2")
        assert result.returncode == 2, (executor, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, executor
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .startswith(f"error: {folder}/beer.stackexchange.com-Posts.xml: line 930")
        )
        assert not (out / "train.jsonl").exists()
