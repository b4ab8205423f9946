"""The mix a config asks for: dev never starves a scarce group, shortfalls are said (console, report top,
--strict), already-curated sets pass through whole, a dev file replaces the split."""

from __future__ import annotations

import json
import random
from collections import Counter

from tests.curation.conftest import assert_ok, read_jsonl, summary
from tests.curation.test_selection import _text, _write


def _records(source: str, n: int, seed: int, words: int = 60) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": f"{source}-{i}", "source": source, "domain": f"{source}-{i % 3}",
         "messages": [{"role": "user", "content": f"{source} {i}: " + _text(rng, 15)},
                      {"role": "assistant", "content": _text(rng, words)}]}
        for i in range(n)
    ]  # fmt: skip


def test_dev_never_starves_a_scarce_group(curate, tmp_path):
    path = tmp_path / "mix.jsonl"
    _write(path, _records("scarce", 15, 0) + _records("plenty", 400, 1))
    args = ("--input", str(path), "selection.quotas={scarce: 200, plenty: 200}", "dev.size=40",
            "dedup.enabled=false")  # fmt: skip
    result, out = curate(*args)
    assert_ok(result)
    train, dev = read_jsonl(out / "train.jsonl"), read_jsonl(out / "dev.jsonl")
    # All 15 scarce candidates are in train (the old global split sent every one of them to dev).
    assert Counter(r["source"] for r in train) == {"scarce": 15, "plenty": 200}
    assert Counter(r["source"] for r in dev) == {"plenty": 40}  # dev comes from the group with a surplus
    assert not {r["id"] for r in train} & {r["id"] for r in dev}
    # The shortfall is said in the console and first in the report, with the nearest fix.
    assert "WARNING" in result.stderr and "scarce" in result.stderr, result.stderr
    assert "selection.quotas.scarce=15" in result.stderr
    row = {r["group"]: r for r in summary(out)["counts"]["shortfalls"]}["scarce"]
    assert {k: row[k] for k in ("group", "asked", "candidates", "train", "dev")} == {
        "group": "scarce", "asked": 200, "candidates": 15, "train": 15, "dev": 0,
    }  # fmt: skip
    report = (out / "report.md").read_text()
    assert report.index("Warning: quota shortfall") < report.index("## Data card")
    # The config can ask for the old behaviour: then dev may take from the scarce group.
    result, out = curate(*args, "dev.from_short_groups=true")
    assert_ok(result)
    assert Counter(r["source"] for r in read_jsonl(out / "dev.jsonl"))["scarce"] > 0


def test_scale_quotas_keeps_the_proportions(curate, tmp_path):
    path = tmp_path / "mix.jsonl"
    _write(path, _records("scarce", 15, 0) + _records("plenty", 400, 1))
    result, out = curate("--input", str(path), "selection.quotas={scarce: 100, plenty: 200}", "dev.size=0",
                         "dedup.enabled=false", "selection.scale_quotas=true")  # fmt: skip
    assert_ok(result)
    assert Counter(r["source"] for r in read_jsonl(out / "train.jsonl")) == {"scarce": 15, "plenty": 30}
    assert "scarce 15, plenty 30" in result.stdout


def test_a_missing_group_is_a_warning_and_strict_exits_2(curate, tmp_path):
    path = tmp_path / "one.jsonl"
    _write(path, _records("manual", 30, 2))
    config = tmp_path / "two.yaml"
    config.write_text("selection:\n  quotas: {manual: 20, reddit: 150}\ndev:\n  size: 0\n")
    args = ("--input", str(path))
    result, out = curate(*args, config=str(config))
    assert_ok(result)
    assert "it has NO examples of reddit:" in result.stderr
    assert "more dumps of that kind" in result.stderr and "selection.quotas.reddit=0" in result.stderr
    assert "mix:" in result.stdout and "reddit" in result.stdout
    result, out = curate(*args, "--strict", config=str(config))
    assert result.returncode == 2, result.stderr
    assert "--strict" in result.stderr and "reddit" in result.stderr
    assert (out / "report.html").exists()  # the report that explains it is still written


def _lima_array(path, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    preamble = "Below is an instruction that describes a task. Write a response that appropriately completes the request. ### Instruction: "  # fmt: skip
    rows = [
        {"id": f"identity_{i}", "score": 0.0,
         "conversations": [{"from": "human", "value": preamble + _text(rng, 20)},
                           {"from": "gpt", "value": _text(rng, 80)}]}
        for i in range(n)
    ]  # fmt: skip
    path.write_text(json.dumps(rows, indent=2))
    return rows


def test_the_lima_set_passes_through_whole_with_dedup_and_stats(curate, tmp_path):
    lima = tmp_path / "lima_train_mini.json"  # a LIMA-named FastChat array: group "lima"
    rows = _lima_array(lima, 30, 3)
    rows.append({**rows[4], "id": "identity_copy"})  # a planted exact copy: dedup still applies
    lima.write_text(json.dumps(rows))
    manual = tmp_path / "manual.jsonl"
    _write(manual, _records("manual", 60, 4))
    result, out = curate("--input", str(lima), "--input", str(manual), "dev.size=5")  # the shipped lima.yaml
    assert_ok(result)
    train = read_jsonl(out / "train.jsonl")
    got = Counter(r["source"] for r in train)
    assert got["lima"] == 30, got  # taken whole, not dropped as no_quota, not sampled
    assert got["manual"] == 60  # 200 asked, 60 there: a group short of its quota gives dev nothing
    assert read_jsonl(out / "dev.jsonl") == []
    reasons = Counter(r["reason"] for r in read_jsonl(out / "rejected.jsonl.gz"))
    assert (
        reasons["no_quota"] == 0
        and reasons["near_duplicate_response"] + reasons["near_duplicate_prompt"] == 1
    )
    stats = summary(out)["stats"]["train"]
    assert sum(r["group"] == "lima" for r in stats) == 30
    assert "whole" in result.stdout  # the mix table names the pass-through group


def test_a_dev_file_replaces_the_split(curate, tmp_path):
    data = _records("manual", 40, 5)
    path = tmp_path / "manual.jsonl"
    _write(path, data)
    dev_file = tmp_path / "dev_alpaca.jsonl"
    dev_rows = [{"instruction": data[0]["messages"][0]["content"], "input": "", "output": "a written answer"},
                {"instruction": "a new question", "input": "", "output": "another written answer"}]  # fmt: skip
    _write(dev_file, dev_rows)
    result, out = curate("--input", str(path), "selection.quotas={manual: 100}", f"dev.file={dev_file}",
                         "dev.size=10")  # fmt: skip
    assert_ok(result)
    dev = read_jsonl(out / "dev.jsonl")
    assert [r["messages"][1]["content"] for r in dev] == ["a written answer", "another written answer"]
    train = read_jsonl(out / "train.jsonl")
    assert len(train) == 39 and "manual-0" not in {r["id"] for r in train}  # its prompt is in the dev file
    reasons = Counter(r["reason"] for r in read_jsonl(out / "rejected.jsonl.gz"))
    assert reasons["in_dev_file"] == 1


def test_a_quota_for_a_pass_through_group_samples_it(curate, tmp_path):
    lima = tmp_path / "lima_train_mini.json"
    _lima_array(lima, 30, 6)
    result, out = curate("--input", str(lima), "selection.quotas.lima=7", "dev.size=0")
    assert_ok(result)
    assert Counter(r["source"] for r in read_jsonl(out / "train.jsonl")) == {"lima": 7}
    assert Counter(r["reason"] for r in read_jsonl(out / "rejected.jsonl.gz"))["not_selected"] == 23


def test_the_issue_command_on_the_shared_data_gives_a_mix(curate, shared_data):
    result, out = curate(
        "--input", str(shared_data / "stackexchange"), "--input", str(shared_data / "wikihow"),
        "--input", str(shared_data / "lima" / "lima_train_1k_fastchat.json"),
    )  # fmt: skip
    assert_ok(result)
    counts = summary(out)["counts"]
    groups = counts["groups"]
    assert groups["other"]["train"] == groups["other"]["candidates"] > 0  # Stack Exchange is in train
    assert groups["other"]["dev"] == 0
    assert groups["wikihow"]["train"] == 200
    assert groups["lima"]["train"] >= 990  # the LIMA set, less near-duplicates of the dumps
    assert "no_quota" not in counts["reasons"]
    assert "NO examples of stem" in result.stderr
    rows = summary(out)["stats"]["train"]
    wikihow = sorted(r["response_chars"] for r in rows if r["group"] == "wikihow")
    assert wikihow[0] >= 2000  # whole articles, not step summaries
    assert "Lengths against LIMA's Table 1" in (out / "report.md").read_text()
