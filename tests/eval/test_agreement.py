"""Agreement metrics by hand, and `lima agreement` on the real PandaLM labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lima.eval.metrics import agreement, bootstrap_ci, combine, length_adjusted_win_rate, outcome_summary


def test_metrics_on_a_small_hand_table():
    pred = ["A", "A", "B", "tie", "tie", "B"]
    gold = ["A", "B", "B", "A", "tie", "tie"]
    result = agreement(pred, gold)
    assert result["accuracy"] == pytest.approx(3 / 6, abs=1e-4)
    # 1 + 0 + 1 + 0.5 + 1 + 0.5
    assert result["tie_discounted_accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert (result["accuracy_without_ties"], result["n_without_ties"]) == (pytest.approx(2 / 3, abs=1e-4), 3)
    expected = (2 * 2 + 2 * 2 + 2 * 2) / 36  # every label used twice on each side
    assert result["cohen_kappa"] == pytest.approx((0.5 - expected) / (1 - expected), abs=1e-4)


def test_combine_orders():
    assert combine("A", "A") == "A" and combine("A", "B") == "tie" and combine("A", "tie") == "tie"
    assert combine("A", "tie", "lenient") == "A" and combine("tie", "B", "lenient") == "B"
    assert combine("A", "B", "lenient") == "tie"


def test_outcome_summary_and_bootstrap():
    summary = outcome_summary(["A"] * 6 + ["tie"] * 2 + ["B"] * 2, resamples=2000, seed=1)
    assert (summary["win_pct"], summary["tie_pct"], summary["loss_pct"]) == (60.0, 20.0, 20.0)
    assert summary["win_rate"] == 70.0
    low, high = summary["ci95"]
    assert 35 < low < 70 < high <= 100
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)


def test_length_adjusted_win_rate_discounts_a_length_advantage():
    # A wins exactly when its answer is longer: the raw win rate is 50%, length explains it all.
    len_a = [100, 300, 100, 300] * 10
    len_b = [200, 200, 200, 200] * 10
    scores = [0.0, 1.0, 0.0, 1.0] * 10
    assert length_adjusted_win_rate(scores, len_a, len_b) == pytest.approx(0.5, abs=0.02)
    # A wins 80% at equal lengths: the length-controlled rate equals the raw one.
    scores = [1.0] * 8 + [0.0] * 2
    assert length_adjusted_win_rate(scores, [50] * 10, [50] * 10) == pytest.approx(0.8, abs=0.01)
    # Wins mostly when longer: controlling for length lowers the rate.
    len_a = [400] * 6 + [100] * 4
    scores = [1.0] * 6 + [1.0, 0.0, 0.0, 0.0]
    lc = length_adjusted_win_rate(scores, len_a, [200] * 10)
    assert lc < 0.7


def _pandalm_majority(votes: list[int]) -> str:
    label, count = Counter(votes).most_common(1)[0]
    return "tie" if count == 1 or label == 0 else {1: "A", 2: "B"}[label]


def test_agreement_cli_on_pandalm_reproduces_hand_numbers(shared_data, tmp_path, cli):
    """Predictions = annotator 1's label; gold = the majority of the three annotators.

    Hand counts from the 999 rows (annotator triples): gold A 422, B 472, tie 105; annotator 1 says A 427,
    B 475, tie 97; 961 exact matches; 16 rows where exactly one side says tie ((2,0,0) 7, (1,0,0) 5,
    (0,2,2) 4); 890 rows where both are decisive, 868 of them matching.
    """
    rows = json.loads((shared_data / "preferences" / "pandalm_testset_v1.json").read_text())
    to_label = {0: "tie", 1: "A", 2: "B"}
    gold = tmp_path / "gold.jsonl"
    pred = tmp_path / "pred.jsonl"
    gold.write_text(
        "".join(
            json.dumps(
                {
                    "id": r["idx"],
                    "label": _pandalm_majority([r["annotator1"], r["annotator2"], r["annotator3"]]),
                }
            )
            + "\n"
            for r in rows
        )
    )
    extra = {"id": "no-such-gold", "verdict": "A"}
    pred.write_text(
        "".join(json.dumps({"id": r["idx"], "verdict": to_label[r["annotator1"]]}) + "\n" for r in rows)
        + json.dumps(extra)
        + "\n"
    )
    result = cli("agreement", "--pred", str(pred), "--gold", str(gold), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["n"] == 999 and out["missing_predictions"] == 0 and out["unmatched_predictions"] == 1
    assert out["accuracy"] == pytest.approx(961 / 999, abs=1e-4)
    assert out["tie_discounted_accuracy"] == pytest.approx((961 + 0.5 * 16) / 999, abs=1e-4)
    assert out["accuracy_without_ties"] == pytest.approx(868 / 890, abs=1e-4)
    p_o, p_e = 961 / 999, (427 * 422 + 475 * 472 + 97 * 105) / 999**2
    assert out["cohen_kappa"] == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-4)

    # Gold ids without a prediction are counted, not scored.
    pred.write_text(
        "".join(json.dumps({"id": r["idx"], "verdict": to_label[r["annotator1"]]}) + "\n" for r in rows[:-10])
    )
    out = json.loads(cli("agreement", "--pred", str(pred), "--gold", str(gold), "--json").stdout)
    assert (out["n"], out["missing_predictions"]) == (989, 10)


def test_agreement_cli_bad_input_is_one_line(tmp_path, cli):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": 1, "label": "A"}\n{"id": 2, "label": "maybe"}\n')
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"id": 1, "verdict": "A"}\n')
    result = cli("agreement", "--pred", str(pred), "--gold", str(gold))
    assert result.returncode == 2
    assert "gold.jsonl:2: label: 'maybe' is not one of A, B, tie" in result.stderr
    assert "Traceback" not in result.stderr


AUTOJ = Path(__file__).parent / "formats" / "data" / "autoj"


def test_autoj_two_orders_agreement_and_consistency(cli):
    """Auto-J's pairwise_eval.py by hand. Labels 0 1 2 0 1 0; original predictions 0 1 0 1 1 0; exchanged-order
    predictions 1 0 2 1 1 1, in exchanged terms -> mapped back 0 1 2 0 0 0. Original agrees on rows 0 1 4 5
    (66.67), mapped-back on 0 1 2 3 5 (83.33), the two orders agree on 0 1 5 (consistency 50.0), all three on
    0 1 5 (agreement both orders 50.0: Auto-J's reported pairwise agreement)."""
    result = cli(
        "agreement", "--format", "autoj", "--gold", str(AUTOJ / "testdata_pairwise.jsonl"),
        "--pred", str(AUTOJ / "pairwise_example_output.jsonl"),
        "--pred-swapped", str(AUTOJ / "pairwise_exchange_example_output.jsonl"), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["agreement"], out["agreement_swapped"]) == (66.67, 83.33)
    assert (out["agreement_both_orders"], out["consistency"], out["n_both_orders"]) == (50.0, 50.0, 6)
    assert out["per_category"]["planning"]["n"] == 2  # the scenario is the category


def test_autoj_line_counts_must_match(tmp_path, cli):
    short = tmp_path / "pred.jsonl"
    short.write_text('{"output": 0}\n{"output": 1}\n')
    result = cli(
        "agreement",
        "--format",
        "autoj",
        "--gold",
        str(AUTOJ / "testdata_pairwise.jsonl"),
        "--pred",
        str(short),
    )
    assert result.returncode == 2 and "line i predicts row i" in result.stderr and "has 2" in result.stderr
    assert "Traceback" not in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"output": 0}\n{"output": 3}\n')
    result = cli(
        "agreement", "--format", "autoj", "--gold", str(AUTOJ / "testdata_pairwise.jsonl"), "--pred", str(bad)
    )
    assert result.returncode == 2 and "bad.jsonl:2: output: 3 is not 0, 1 or 2" in result.stderr


def test_pred_swapped_with_ids_after_autoj_import(tmp_path, cli):
    """The same numbers through `lima import autoj` (id = line index) and lima's id-keyed agreement."""
    files = {}
    for name, source in (("gold", "testdata_pairwise.jsonl"), ("pred", "pairwise_example_output.jsonl"),
                         ("swapped", "pairwise_exchange_example_output.jsonl")):  # fmt: skip
        files[name] = tmp_path / f"{name}.jsonl"
        assert cli("import", "autoj", str(AUTOJ / source), "--out", str(files[name])).returncode == 0
    result = cli("agreement", "--gold", str(files["gold"]), "--pred", str(files["pred"]),
                 "--pred-swapped", str(files["swapped"]), "--json")  # fmt: skip
    out = json.loads(result.stdout)
    assert (out["agreement_both_orders"], out["consistency"]) == (50.0, 50.0)
