"""Selection through the CLI on synthetic inputs: τ-sampling proportions, planted near-duplicates, dev split."""

from __future__ import annotations

import json
import random
from collections import Counter

from lima.curation.select import tau_probabilities
from tests.curation.conftest import assert_ok, read_jsonl, summary

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau upsilon phi chi psi "
         "omega river stone cloud maple cedar falcon harbor lantern meadow quartz saddle timber velvet willow").split()  # fmt: skip


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _write(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_tau_sampling_matches_formula(curate, tmp_path):
    rng = random.Random(0)
    sizes = {f"d{i:02d}": n for i, n in enumerate([1200, 800, 500, 300, 200, 150, 120, 100, 80, 60])}
    records = [
        {"id": f"{d}-{j}", "source": "manual", "domain": d,
         "messages": [{"role": "user", "content": _text(rng, 12)}, {"role": "assistant", "content": _text(rng, 40)}]}
        for d, n in sizes.items() for j in range(n)
    ]  # fmt: skip
    path = tmp_path / "many.jsonl"
    _write(path, records)
    quota = 600  # small enough that no domain runs dry before the quota is met
    result, out = curate("--input", str(path), f"selection.quotas={{manual: {quota}}}", "dev.size=0",
                         "dedup.enabled=false", "selection.temperature=3")  # fmt: skip
    assert_ok(result)
    got = Counter(r["domain"] for r in read_jsonl(out / "train.jsonl"))
    assert sum(got.values()) == quota
    expected = tau_probabilities(sizes, 3.0)
    # Total variation distance to the formula: multinomial noise at n=600 is ~0.05; proportional
    # sampling (τ = 1) would be ~0.25 away.
    tv = 0.5 * sum(abs(got.get(d, 0) / quota - p) for d, p in expected.items())
    assert tv < 0.1, (tv, got)
    proportional = tau_probabilities(sizes, 1.0)
    assert 0.5 * sum(abs(got.get(d, 0) / quota - p) for d, p in proportional.items()) > 0.2
    assert abs(expected["d00"] / expected["d09"] - (1200 / 60) ** (1 / 3)) < 1e-9


def test_planted_near_duplicates_are_removed(curate, tmp_path):
    rng = random.Random(1)
    originals = [
        {"id": f"orig-{i}", "source": "manual", "meta": {"score": 5},
         "messages": [{"role": "user", "content": _text(rng, 30)}, {"role": "assistant", "content": _text(rng, 120)}]}
        for i in range(30)
    ]  # fmt: skip
    planted = []
    for i, o in enumerate(originals[:10]):
        prompt, response = o["messages"][0]["content"], o["messages"][1]["content"]
        words = response.split()
        words[5] = "changed"  # one word differs: still a near-duplicate response
        planted.append({"id": f"dup-resp-{i}", "source": "manual", "meta": {"score": 1},
                        "messages": [{"role": "user", "content": _text(rng, 30)},
                                     {"role": "assistant", "content": " ".join(words)}]})  # fmt: skip
        planted.append({"id": f"dup-prompt-{i}", "source": "manual", "meta": {"score": 1},
                        "messages": [{"role": "user", "content": prompt + " please"},
                                     {"role": "assistant", "content": _text(rng, 120)}]})  # fmt: skip
    path = tmp_path / "dups.jsonl"
    _write(path, originals + planted)
    result, out = curate("--input", str(path), "selection.quotas=null", "dev.size=0")
    assert_ok(result)
    kept = {r["id"] for r in read_jsonl(out / "train.jsonl")}
    assert kept == {o["id"] for o in originals}  # every plant gone, every original (higher score) kept
    rejected = {r["id"]: r for r in read_jsonl(out / "rejected.jsonl.gz")}
    assert rejected["dup-resp-3"]["reason"] == "near_duplicate_response"
    assert rejected["dup-resp-3"]["detail"] == "near-duplicate of orig-3"
    assert rejected["dup-prompt-4"]["reason"] == "near_duplicate_prompt"
    assert summary(out)["counts"]["sources"]["manual"]["duplicates"] == 20


def test_dev_is_drawn_first_and_disjoint_and_groups_without_quota_are_dropped(curate, tmp_path):
    rng = random.Random(2)
    records = [
        {"id": f"{src}-{i}", "source": src, "domain": f"{src}-{i % 4}",
         "messages": [{"role": "user", "content": _text(rng, 15)}, {"role": "assistant", "content": _text(rng, 60)}]}
        for src in ("manual", "reddit_like", "extra") for i in range(40)
    ]  # fmt: skip
    path = tmp_path / "mix.jsonl"
    _write(path, records)
    result, out = curate(
        "--input",
        str(path),
        "selection.quotas={manual: 20, reddit_like: 10}",
        "dev.size=12",
        "dev.max_fraction=0.5",
    )
    assert_ok(result)
    train, dev = read_jsonl(out / "train.jsonl"), read_jsonl(out / "dev.jsonl")
    assert Counter(r["source"] for r in train) == {"manual": 20, "reddit_like": 10}
    assert Counter(r["source"] for r in dev) == {"manual": 8, "reddit_like": 4}  # dev split like the quotas
    assert not {r["id"] for r in train} & {r["id"] for r in dev}
    reasons = Counter(r["reason"] for r in read_jsonl(out / "rejected.jsonl.gz"))
    assert reasons["no_quota"] == 40 and reasons["not_selected"] == 120 - 40 - 30 - 12
