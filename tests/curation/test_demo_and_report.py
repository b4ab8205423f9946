"""The demo config on the project's own samples (embeddings, diversity order, report) and report escaping."""

from __future__ import annotations

import json

import pytest

from tests.curation.conftest import ROOT, assert_ok, read_jsonl, summary

DEMO = str(ROOT / "configs" / "curate" / "demo.yaml")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("demo")
    result = run_cli(
        "curate", DEMO, "--out", str(out), cwd=out
    )  # relative inputs resolve against the repo root
    assert_ok(result)
    return out


def test_demo_sizes_mix_and_lima_rules(demo):
    train, dev = read_jsonl(demo / "train.jsonl"), read_jsonl(demo / "dev.jsonl")
    assert 30 <= len(train) <= 60 and 10 <= len(dev) <= 20
    assert {r["source"] for r in train} == {"stackexchange", "wikihow", "manual"}
    assert {r["meta"]["group"] for r in train} == {"stem", "other", "wikihow", "manual"}
    assert not {r["id"] for r in train} & {r["id"] for r in dev}
    by_id = {r["id"]: r for r in train + dev}
    photo = by_id["physics.stackexchange.com-21"]["messages"][1]["content"]
    assert (
        "encyclopedia article" in photo and "http" not in photo and "diagram" not in photo
    )  # link text kept
    pendulum = by_id["physics.stackexchange.com-9"]["messages"][1]["content"]
    assert "```\nimport math\n" in pendulum and "`omega`" in pendulum
    brew = next(r for r in train + dev if r["messages"][0]["content"] == "How to Make Cold Brew Coffee?")
    assert "The following answer explains" in brew["messages"][1]["content"]
    repot = next(r for r in train + dev if r["messages"][0]["content"] == "How to Repot a Houseplant?")
    assert "Spring is the best time" not in repot["messages"][1]["content"]  # the Tips section is pruned
    reasons = summary(demo)["counts"]["reasons_by_source"]["stackexchange"]
    assert reasons == {
        "title_not_a_question": 2,
        "answer_score": 2,
        "first_person": 1,
        "refers_to_other_answers": 1,
    }


def test_demo_report_has_plots_map_and_data_card(demo):
    from lima.curation.report import render_data_card_html, render_data_card_md

    html = (demo / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3  # lengths, scores, embedding map
    assert "Kept and rejected examples" in html and "first_person" in html
    md = (demo / "report.md").read_text()
    for name in ("lengths", "scores", "embedding_map"):
        assert (
            f"report_assets/{name}.png" in md
            and (demo / "report_assets" / f"{name}.png").stat().st_size > 1000
        )
    card = render_data_card_md(demo)
    assert "| train examples | 36 |" in card and "| dev examples | 12 |" in card
    assert render_data_card_html(demo).startswith('<section class="data-card">')
    manifest = json.loads((demo / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["counts"]["train"] == 36


def test_planted_script_is_escaped_everywhere(curate, tmp_path):
    evil = "<script>alert('x')</script>"
    records = [
        {"id": f"m{i}", "source": "manual", "domain": f"d{i} {evil}",
         "messages": [{"role": "user", "content": f"Question {i} {evil}?"},
                      {"role": "assistant", "content": f"Answer {i} with {evil} inside." + " more" * 20 * (i % 2)}]}
        for i in range(6)
    ]  # fmt: skip
    path = tmp_path / "evil.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result, out = curate(
        "--input", str(path), "selection.quotas=null", "dev.size=0", "filters.generic.max_chars=60"
    )
    assert_ok(result)
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "<script" not in html.lower() and "<script" not in md.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # shown as text
    assert summary(out)["counts"]["reasons"] == {"too_long": 3}  # both kept and rejected text in the report
    assert "d0 &lt;script&gt;" in html and "d1 &lt;script&gt;" in html
