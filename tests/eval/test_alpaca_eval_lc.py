"""AlpacaEval 2's length-controlled win rate: lima's GLM against alpaca_eval's own ``get_length_controlled_winrate``
(the ``anchors`` extra installs alpaca-eval; ``make test`` installs it, so this is never skipped) on synthetic
annotations and synthetic hub files, soft preferences, ties, failed annotations, and the gamed-baseline weighting;
``lima summarize``'s options and their errors; lima's own length adjustment fitted to soft preferences."""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from lima.core.errors import LimaError
from lima.eval.alpaca_eval_lc import alpaca_eval_lc_win_rate, read_difficulty, read_gamed
from lima.eval.metrics import SCORE, length_adjusted_win_rate
from lima.eval.summary import summarize_judgments


def _alpaca_eval_glm() -> types.ModuleType:
    """alpaca_eval's ``metrics.glm_winrate``. alpaca-eval 0.6.6 imports ``pkg_resources`` at import time (only
    to compare versions), which setuptools >= 81 no longer ships: give it ``packaging``'s parser instead."""
    shimmed = False
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            from packaging.version import parse

            shim = types.ModuleType("pkg_resources")
            shim.parse_version = parse  # type: ignore[attr-defined]
            sys.modules["pkg_resources"] = shim
            shimmed = True
    try:
        import alpaca_eval.metrics.glm_winrate as glm
    except ImportError as exc:  # a failure, not a skip: the equality test is the point of the extra
        pytest.fail(f"alpaca-eval is not installed ({exc}): pip install -e '.[anchors]' (make test does)")
    finally:
        if shimmed:  # alpaca_eval holds its own reference; nothing else in the session sees the stand-in
            del sys.modules["pkg_resources"]
    return glm


def synthetic(
    n: int = 805, seed: int = 0, nulls: int = 0, ties: int = 0, discrete: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """AlpacaEval-shaped annotations of a model (output_2) against its baseline (output_1), whose preference
    grows with the length advantage and falls with the instruction's difficulty; the two gamed baselines
    (verbose, concise) of ``df_gamed.csv``; and ``instruction_difficulty.csv``."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1, n)
    len_base, len_model = rng.integers(200, 3000, n), rng.integers(100, 4000, n)
    logit = 0.3 - 0.8 * difficulty + 0.9 * np.tanh((len_model - len_base) / 1000)
    pref = np.round(np.clip(1 / (1 + np.exp(-logit)) + rng.normal(0, 0.15, n), 0, 1), 6) + 1
    if discrete:
        pref = np.where(pref > 1.6, 2.0, np.where(pref < 1.4, 1.0, 1.5))
    pref[rng.choice(n, ties, replace=False)] = 1.5
    pref[rng.choice(n, nulls, replace=False)] = np.nan
    annotations = pd.DataFrame(
        {
            "instruction": [f"instruction {i}" for i in range(n)],
            "output_1": ["b" * k for k in len_base],
            "output_2": ["m" * k for k in len_model],
            "generator_1": "baseline",
            "generator_2": "model",
            "annotator": "weighted_alpaca_eval_gpt4_turbo",
            "preference": pref,
        }
    )
    gamed = []
    for name, scale in (("baseline_verbose", 1.6), ("baseline_concise", 0.5)):
        delta = len_base - (len_base * scale).astype(int)
        std_delta = delta / delta.std(ddof=1)
        p = np.clip(1 / (1 + np.exp(-(-0.5 * difficulty - np.tanh(std_delta)))) + rng.normal(0, 0.1, n), 0, 1)
        gamed.append(
            pd.DataFrame(
                {
                    "model": name,
                    "index": np.arange(n),
                    "preference": p,
                    "std_delta_len": std_delta,
                    "instruction_difficulty": difficulty,
                    "not_gamed_baseline": False,
                }
            )
        )
    table = pd.Series(difficulty, index=pd.Index(range(n), name="index"), name="instruction_difficulty")
    return annotations, pd.concat(gamed, ignore_index=True), table


def write_files(tmp_path: Path, gamed: pd.DataFrame, difficulty: pd.Series) -> tuple[Path, Path]:
    gamed_csv, difficulty_csv = tmp_path / "df_gamed.csv", tmp_path / "instruction_difficulty.csv"
    gamed.to_csv(gamed_csv, index=False)
    difficulty.to_csv(difficulty_csv)
    return gamed_csv, difficulty_csv


def anchor_lc(annotations: pd.DataFrame, gamed_csv: Path, glm_name: str) -> dict:
    """alpaca_eval's own function, its hub download pointed at the synthetic df_gamed.csv."""
    glm = _alpaca_eval_glm()
    with mock.patch.object(glm, "hf_hub_download", return_value=str(gamed_csv)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glm.get_length_controlled_winrate(
            annotations.copy(), glm_name=glm_name, save_weights_dir=None, is_warn_extreme_changes=False
        )


def lima_lc(annotations: pd.DataFrame, gamed_csv: Path | None, difficulty_csv: Path) -> dict:
    prefs = [None if np.isnan(p) else p - 1 for p in annotations["preference"]]
    return alpaca_eval_lc_win_rate(
        prefs,
        annotations["output_2"].str.len().tolist(),
        annotations["output_1"].str.len().tolist(),
        list(range(len(annotations))),
        read_difficulty(difficulty_csv),
        read_gamed(gamed_csv) if gamed_csv is not None else None,
    )


# Equal to 1e-12 relative: the same liblinear fits on the same float64 arrays; in practice the two agree to the
# last bit (difference 0.0 on every case below), the margin only allows a BLAS that sums in another order.
CASES = {
    "soft": {},
    "soft, ties and failed annotations": {"ties": 40, "nulls": 7, "seed": 1},
    "discrete verdicts": {"discrete": True, "seed": 2},
}


@pytest.mark.parametrize("case", list(CASES))
def test_lc_equals_alpaca_evals_own_glm_with_the_gamed_baselines(tmp_path, case):
    annotations, gamed, difficulty = synthetic(**CASES[case])
    gamed_csv, difficulty_csv = write_files(tmp_path, gamed, difficulty)
    theirs = anchor_lc(annotations, gamed_csv, "length_controlled_v1")
    ours = lima_lc(annotations, gamed_csv, difficulty_csv)
    assert ours["alpaca_eval_lc_win_rate"] == pytest.approx(theirs["length_controlled_winrate"], rel=1e-12)
    assert ours["alpaca_eval_lc_standard_error"] == pytest.approx(theirs["lc_standard_error"], rel=1e-12)
    # the gamed rows matter: without them (AlpacaEval's noreg GLM) the number is another one
    noreg = lima_lc(annotations, None, difficulty_csv)["alpaca_eval_lc_noreg_win_rate"]
    assert abs(noreg - ours["alpaca_eval_lc_win_rate"]) > 1e-3


@pytest.mark.parametrize("case", ["soft", "soft, ties and failed annotations"])
def test_noreg_lc_equals_alpaca_evals_noreg_glm(tmp_path, case):
    annotations, gamed, difficulty = synthetic(n=300, **CASES[case])
    gamed_csv, difficulty_csv = write_files(tmp_path, gamed, difficulty)
    theirs = anchor_lc(annotations, gamed_csv, "length_controlled_noreg")
    ours = lima_lc(annotations, None, difficulty_csv)
    assert ours["alpaca_eval_lc_noreg_win_rate"] == pytest.approx(
        theirs["length_controlled_winrate"], rel=1e-12
    )
    assert ours["alpaca_eval_lc_noreg_standard_error"] == pytest.approx(
        theirs["lc_standard_error"], rel=1e-12
    )


def test_summarize_cli_on_imported_annotations_equals_alpaca_eval(tmp_path, cli):
    """annotations.json -> lima import -> lima summarize --alpaca-eval-*: the leaderboard's LC of the same file,
    each row matched to its instruction by the alpaca_eval_index the import records, failed (null) annotations
    kept as error judgments as AlpacaEval keeps them; the hub hint is in --help."""
    annotations, gamed, difficulty = synthetic(n=400, ties=20, nulls=5, seed=3)
    gamed_csv, difficulty_csv = write_files(tmp_path, gamed, difficulty)
    theirs = anchor_lc(annotations, gamed_csv, "length_controlled_v1")
    (tmp_path / "annotations.json").write_text(annotations.to_json(orient="records"))
    judgments = tmp_path / "judgments.jsonl"
    result = cli("import", "alpaca_eval", str(tmp_path / "annotations.json"), "--out", str(judgments))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in judgments.read_text().splitlines()]
    assert [r["meta"]["alpaca_eval_index"] for r in rows] == list(range(400))
    args = ["summarize", str(judgments), "--alpaca-eval-difficulty", str(difficulty_csv), "--json"]
    result = cli(*args, "--alpaca-eval-gamed", str(gamed_csv))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["alpaca_eval_lc_win_rate"] == pytest.approx(theirs["length_controlled_winrate"], rel=1e-12)
    assert summary["soft_win_rate"] == pytest.approx(theirs["win_rate"], rel=1e-12)
    # the order of the judgments in the file does not matter: the index does
    judgments.write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    again = json.loads(cli(*args, "--alpaca-eval-gamed", str(gamed_csv)).stdout)
    assert again["alpaca_eval_lc_win_rate"] == summary["alpaca_eval_lc_win_rate"]
    noreg = json.loads(cli(*args).stdout)
    assert "alpaca_eval_lc_win_rate" not in noreg and noreg["alpaca_eval_lc_noreg_win_rate"] > 0
    helptext = cli("summarize", "--help").stdout
    assert "tatsu-lab/alpaca_eval" in helptext


def _judgments(annotations: pd.DataFrame, with_index: bool = True) -> list[dict]:
    out = []
    for i, row in annotations.iterrows():
        p = row["preference"] - 1
        out.append(
            {
                "prompt_id": f"p{i}",
                "verdict": "A" if p > 0.5 else "tie" if p == 0.5 else "B",
                "preference": p,
                "len_a": len(row["output_2"]),
                "len_b": len(row["output_1"]),
                **({"meta": {"alpaca_eval_index": i}} if with_index else {}),
            }
        )
    return out


def test_files_and_judgments_that_do_not_fit_are_clear_errors(tmp_path):
    from lima.eval.summary import alpaca_eval_lc

    annotations, gamed, difficulty = synthetic(n=50)
    gamed_csv, difficulty_csv = write_files(tmp_path, gamed, difficulty)
    judgments = _judgments(annotations)
    bad = tmp_path / "bad_gamed.csv"
    gamed.drop(columns=["std_delta_len"]).to_csv(bad, index=False)
    with pytest.raises(LimaError, match=r"bad_gamed.csv: missing column\(s\) \['std_delta_len'\].*tatsu-lab"):
        read_gamed(bad)
    with pytest.raises(LimaError, match=r"no such instruction difficulty file.*tatsu-lab/alpaca_eval"):
        read_difficulty(tmp_path / "absent.csv")
    with pytest.raises(
        LimaError, match=r"df_gamed.csv: this is AlpacaEval's df_gamed.csv.*--alpaca-eval-gamed"
    ):
        read_difficulty(gamed_csv)
    two = tmp_path / "two_columns.csv"
    pd.DataFrame({"index": [0], "a": [1.0], "b": [2.0]}).to_csv(two, index=False)
    with pytest.raises(LimaError, match=r"expected the columns index,instruction_difficulty.*found"):
        read_difficulty(two)
    short = tmp_path / "short.csv"
    difficulty.iloc[:45].to_csv(short)
    with pytest.raises(
        LimaError, match=r"short.csv: no instruction difficulty for .*45, 46, 47, 48, 49 \(5 of 50"
    ):
        alpaca_eval_lc(judgments, "j.jsonl", read_difficulty(short))
    other = tmp_path / "other.csv"
    (difficulty + 1).to_csv(other)
    with pytest.raises(LimaError, match=r"df_gamed.csv and .*other.csv disagree"):
        alpaca_eval_lc(judgments, "j.jsonl", read_difficulty(other), read_gamed(gamed_csv))
    with pytest.raises(
        LimaError, match=r"j.jsonl: cannot tell which AlpacaEval instruction.*are 10, not the 50"
    ):
        alpaca_eval_lc(
            _judgments(annotations, with_index=False)[:10], "j.jsonl", read_difficulty(difficulty_csv)
        )
    twice = [*judgments[:2], {**judgments[2], "meta": {"alpaca_eval_index": 0}}]
    with pytest.raises(LimaError, match=r"judgments 1 and 3 are both AlpacaEval instruction 0"):
        alpaca_eval_lc(twice, "j.jsonl", read_difficulty(difficulty_csv))
    # as many judgments as instructions and no index: matched by position, AlpacaEval's own rule
    by_position = alpaca_eval_lc(
        _judgments(annotations, with_index=False), "j.jsonl", read_difficulty(difficulty_csv)
    )
    assert by_position == alpaca_eval_lc(judgments, "j.jsonl", read_difficulty(difficulty_csv))


def test_lima_length_adjustment_fits_the_soft_preferences_when_there_are_any():
    """Verdicts say A always wins (a preference of 0.6 reads as a win); the preferences say it is a near coin
    flip. lima's own length-adjusted rate follows the preferences, as soft_win_rate does."""
    rng = np.random.default_rng(0)
    prefs = [round(float(p), 6) for p in rng.uniform(0.51, 0.7, 60)]
    judgments = [
        {"verdict": "A", "preference": p, "len_a": int(la), "len_b": int(lb)}
        for p, la, lb in zip(prefs, rng.integers(100, 900, 60), rng.integers(100, 900, 60), strict=True)
    ]
    lens = ([j["len_a"] for j in judgments], [j["len_b"] for j in judgments])
    summary = summarize_judgments(judgments, resamples=10)
    assert summary["length_adjusted_win_rate"] == round(100 * length_adjusted_win_rate(prefs, *lens), 2)
    assert summary["length_adjusted_win_rate"] < 70 < 100 * length_adjusted_win_rate([SCORE["A"]] * 60, *lens)
    # a discrete judge (soft=False): the verdicts
    discrete = summarize_judgments(judgments, resamples=10, soft=False)
    assert discrete["length_adjusted_win_rate"] > 95


def test_difficulty_is_read_from_the_gamed_file_as_alpaca_eval_reads_it(tmp_path):
    """AlpacaEval takes each instruction's difficulty from df_gamed.csv by pandas row label after
    ``drop_duplicates("index")``: row r's value for instruction r. In the hub's file the first rows are one gamed
    model in index order, so that is the instruction's own; with those rows shuffled it is not, and lima still
    gives AlpacaEval's number (and a difficulty file given beside it is then refused as disagreeing)."""
    annotations, gamed, difficulty = synthetic(n=300, seed=4)
    n = len(difficulty)
    order = np.random.default_rng(0).permutation(n)
    shuffled = pd.concat([gamed.iloc[:n].iloc[order], gamed.iloc[n:]], ignore_index=True)
    gamed_csv, difficulty_csv = write_files(tmp_path, shuffled, difficulty)
    theirs = anchor_lc(annotations, gamed_csv, "length_controlled_v1")
    ours = alpaca_eval_lc_win_rate(
        [p - 1 for p in annotations["preference"]],
        annotations["output_2"].str.len().tolist(),
        annotations["output_1"].str.len().tolist(),
        list(range(n)),
        gamed=read_gamed(gamed_csv),
    )
    assert ours["alpaca_eval_lc_win_rate"] == pytest.approx(theirs["length_controlled_winrate"], rel=1e-12)
    with pytest.raises(LimaError, match="disagree"):
        lima_lc(annotations, gamed_csv, difficulty_csv)
