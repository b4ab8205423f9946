"""AlpacaEval 2's length-controlled win rate, computed as its GLM computes it (tatsu-lab/alpaca_eval,
``src/alpaca_eval/metrics/glm_winrate.py``, ``get_length_controlled_winrate``; alpaca-eval 0.6.6).

The leaderboard's method (``length_controlled_v1``) fits, with no intercept,

    P(model beats baseline) = sigmoid(a * tanh(std_delta_len) + b * instruction_difficulty + c * not_gamed_baseline)

where ``std_delta_len`` is (len(baseline answer) - len(model answer)) in characters over its sample standard
deviation across the model's annotations, ``instruction_difficulty`` a fixed per-instruction value, and the
training set is the model's annotations (``not_gamed_baseline`` = 1, weight 1) plus the rows of two "gamed"
baselines (the baseline prompted to be verbose and concise; ``not_gamed_baseline`` = 0, weight 0.2 / 2) that tie
the fit to the baseline. The targets are the soft preferences (in [0, 1]; failed annotations are left out of the
fit but kept for the prediction), fitted as weighted binary rows: each row once with label 1 and weight p, once
with label 0 and weight 1 - p. The penalty is L1 (liblinear, ``random_state`` 123), its C picked among
``logspace(-4, 4, 10)`` by 5-fold GroupKFold (a row's two copies in one fold) on the weighted log loss. The LC
win rate is 100 × the mean of the predictions with ``std_delta_len`` = 0 and ``not_gamed_baseline`` = 1, over all
the model's rows; its standard error 100 × their standard error of the mean.

AlpacaEval downloads both inputs from the ``tatsu-lab/alpaca_eval`` dataset on the Hugging Face hub at run time
(they are not in the ``alpaca-eval`` wheel): ``df_gamed.csv`` (the gamed baselines' rows; the instruction
difficulty the GLM uses is read from it) and ``instruction_difficulty.csv`` (``index,instruction_difficulty``).
Without the gamed file, the fit is AlpacaEval's ``length_controlled_noreg`` GLM: the same formula on the model's
rows alone (then ``not_gamed_baseline`` is a constant, i.e. an intercept), which is not the leaderboard's number.

Rows are matched to instructions by AlpacaEval's ``index``: the position of the instruction in the evaluation set.

Layer: metrics (numbers only; the files are read here too, since nothing else reads them). scikit-learn and
pandas are imported when the number is computed, not when lima starts.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lima.core.errors import LimaError

# AlpacaEval's ``length_controlled_v1``: the weight of the gamed-baseline rows, split between its two gamed models
GAMED_WEIGHT = 0.2
N_SPLITS = 5
HUB_HINT = (
    "AlpacaEval downloads it from the Hugging Face dataset tatsu-lab/alpaca_eval "
    "(https://huggingface.co/datasets/tatsu-lab/alpaca_eval: df_gamed.csv, instruction_difficulty.csv)"
)
GAMED_COLUMNS = ("index", "preference", "std_delta_len", "instruction_difficulty", "not_gamed_baseline")


@dataclass(frozen=True)
class GamedBaseline:
    """The rows of ``df_gamed.csv``, in file order (the order changes the folds, so it is kept)."""

    path: Path
    preference: np.ndarray  # in [0, 1], NaN where an annotation failed
    std_delta_len: np.ndarray
    instruction_difficulty: np.ndarray
    not_gamed_baseline: np.ndarray  # bool
    # what AlpacaEval's GLM reads as each instruction's difficulty: ``df.drop_duplicates("index")`` looked up by
    # row label, i.e. row r's value for instruction r (the file's first rows are one gamed model in index order)
    difficulty: dict[int, float]


class Difficulty(dict[int, float]):
    """``{instruction index: difficulty}``, remembering the file it came from (for the messages)."""

    path: Path | None = None


def _read_csv(path: str | os.PathLike, what: str, **kwargs: Any) -> Any:
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise LimaError(f"{path}: no such {what} file; {HUB_HINT}")
    try:
        return pd.read_csv(path, **kwargs)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise LimaError(f"{path}: not a CSV {what} file ({exc}); {HUB_HINT}") from exc


def read_difficulty(path: str | os.PathLike) -> Difficulty:
    """``instruction_difficulty.csv``: ``{index: difficulty}`` (AlpacaEval: ``read_csv(index_col=0).squeeze()``)."""
    df = _read_csv(path, "instruction difficulty", index_col=0)
    if {"preference", "std_delta_len"} <= set(df.columns):
        raise LimaError(
            f"{path}: this is AlpacaEval's df_gamed.csv, not instruction_difficulty.csv: give it as the gamed-baseline file (--alpaca-eval-gamed)"
        )
    if "instruction_difficulty" in df.columns:
        column = df["instruction_difficulty"]
    elif len(df.columns) == 1:
        column = df[df.columns[0]]
    else:
        raise LimaError(
            f"{path}: expected the columns index,instruction_difficulty (AlpacaEval's instruction_difficulty.csv), "
            f"found {_columns([df.index.name, *df.columns])}; {HUB_HINT}"
        )
    table = Difficulty(_numeric_map(path, column))
    table.path = Path(path)
    return table


def _numeric_map(path: str | os.PathLike, column: Any) -> dict[int, float]:
    out: dict[int, float] = {}
    for line, (key, value) in enumerate(column.items(), start=2):
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        if not isinstance(key, int | np.integer) or not isinstance(value, float | int | np.number):
            raise LimaError(
                f"{path}:{line}: expected an integer instruction index and a number, found {key!r}, {value!r}"
            )
        if not math.isfinite(value):
            raise LimaError(f"{path}: instruction {key}: the difficulty is {value!r}, not a number")
        out[int(key)] = float(value)
    return out


def read_gamed(path: str | os.PathLike) -> GamedBaseline:
    """``df_gamed.csv``: AlpacaEval's gamed-baseline rows (``model``, ``index``, ``preference`` in [0, 1],
    ``std_delta_len``, ``instruction_difficulty``, ``not_gamed_baseline`` False)."""
    df = _read_csv(path, "gamed-baseline")
    missing = [c for c in GAMED_COLUMNS if c not in df.columns]
    if missing:
        raise LimaError(
            f"{path}: missing column(s) {missing} (found {_columns(list(df.columns))}); expected AlpacaEval's df_gamed.csv "
            f"with {list(GAMED_COLUMNS)}; {HUB_HINT}"
        )
    if df["not_gamed_baseline"].dtype != bool:
        raise LimaError(
            f"{path}: column not_gamed_baseline: expected True/False, found {df['not_gamed_baseline'].dtype}"
        )
    for column in ("index", "std_delta_len", "instruction_difficulty"):
        bad = df[column].isna() | ~np.isfinite(df[column].astype(float))
        if bad.any():
            raise LimaError(f"{path}:{int(bad.idxmax()) + 2}: column {column} is not a number")
    pref = df["preference"].astype(float)
    if ((pref < 0) | (pref > 1)).any():
        raise LimaError(
            f"{path}:{int(((pref < 0) | (pref > 1)).idxmax()) + 2}: column preference: expected AlpacaEval's "
            "[0, 1] scale (preference - 1) as in df_gamed.csv"
        )
    firsts = df.drop_duplicates("index")["instruction_difficulty"]
    return GamedBaseline(
        path=Path(path),
        preference=pref.to_numpy(),
        std_delta_len=df["std_delta_len"].astype(float).to_numpy(),
        instruction_difficulty=df["instruction_difficulty"].astype(float).to_numpy(),
        not_gamed_baseline=df["not_gamed_baseline"].to_numpy(dtype=bool),
        difficulty=_numeric_map(path, firsts),
    )


def _weighted_log_loss(
    y: np.ndarray, proba: np.ndarray, label_prob: np.ndarray, row_weight: np.ndarray | None = None
) -> float:
    """The CV score: the log loss of P(label 1) against the soft target, each row's target recovered from the
    probability of its own label (label 1: p; label 0: 1 - (1 - p)), optionally weighted, averaged over rows."""
    target = np.where(y == 1, label_prob, 1 - label_prob)
    proba = np.clip(proba, 1e-15, 1 - 1e-15)
    loss = target * np.log(proba) + (1 - target) * np.log(1 - proba)
    if row_weight is not None:
        loss = loss * row_weight
    return -np.mean(loss)


def _fit(features: np.ndarray, prefs: np.ndarray, weights: np.ndarray | None, n_splits: int) -> Any:
    """The L1 logistic GLM on soft targets, C chosen by GroupKFold: AlpacaEval's ``fit_LogisticRegressionCV``."""
    from sklearn import config_context
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    n = len(prefs)
    x = np.concatenate([features, features])  # every row twice: label 1 weighted p, label 0 weighted 1 - p
    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    label_prob = np.concatenate([prefs, 1 - prefs])
    groups = np.concatenate([np.arange(n), np.arange(n)])
    row_weight = None if weights is None else np.concatenate([weights, weights])
    sample_weight = label_prob if row_weight is None else label_prob * row_weight
    # metadata routing carries each test fold's targets and weights to the scorer; scoped, not set globally.
    # scikit-learn 1.8+ deprecates ``penalty`` (for ``l1_ratios``); AlpacaEval passes it, so do we, quietly.
    with config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scorer = make_scorer(
            _weighted_log_loss, response_method="predict_proba", greater_is_better=False
        ).set_score_request(label_prob=True, row_weight=True)
        model = LogisticRegressionCV(
            cv=GroupKFold(n_splits=n_splits),
            scoring=scorer,
            penalty="l1",
            solver="liblinear",
            fit_intercept=False,
            dual=False,
            random_state=123,
        )
        model.set_fit_request(sample_weight=True)
        extra = {} if row_weight is None else {"row_weight": row_weight}
        model.fit(x, y, sample_weight=sample_weight, groups=groups, label_prob=label_prob, **extra)
    return model


def alpaca_eval_lc_win_rate(
    preferences: Sequence[float | None],
    len_model: Sequence[int],
    len_baseline: Sequence[int],
    instruction_index: Sequence[int],
    difficulty: Mapping[int, float] | None = None,
    gamed: GamedBaseline | None = None,
    n_splits: int = N_SPLITS,
) -> dict[str, Any]:
    """AlpacaEval 2's LC win rate of a model against its baseline, one entry per annotation (in AlpacaEval's
    order: by ``instruction_index``).

    ``preferences``: P(model better) in [0, 1] (AlpacaEval's ``preference - 1``), None for a failed annotation;
    lengths in characters. With ``gamed`` this is the leaderboard's ``length_controlled_v1`` and the difficulty
    comes from the gamed file, as in AlpacaEval (``difficulty``, if given too, must agree with it); without it,
    ``length_controlled_noreg`` with ``difficulty``. Returns ``alpaca_eval_lc_win_rate`` (or
    ``alpaca_eval_lc_noreg_win_rate``), its standard error and the GLM's weights."""
    import pandas as pd

    n = len(preferences)
    if not (n == len(len_model) == len(len_baseline) == len(instruction_index)):
        raise ValueError("preferences, lengths and instruction indices differ in length")
    if gamed is None and difficulty is None:
        raise ValueError("give the instruction difficulty, the gamed baselines or both")
    order = sorted(range(n), key=lambda i: instruction_index[i])  # AlpacaEval's rows are in index order
    index = [int(instruction_index[i]) for i in order]
    lookup = gamed.difficulty if gamed is not None else difficulty
    assert lookup is not None
    source = gamed.path if gamed is not None else getattr(difficulty, "path", None) or "the difficulty"
    missing = sorted({i for i in index if i not in lookup})
    if missing:
        raise LimaError(
            f"{source}: no instruction difficulty for AlpacaEval instruction index(es) {_shown(missing)} "
            f"({len(missing)} of {len(set(index))} judged instructions); is it AlpacaEval 2's file, and are the "
            "judgments of AlpacaEval's 805 instructions?"
        )
    if gamed is not None and difficulty is not None:
        # the two hub files may print the same values to different precision: compare loosely, use df_gamed's
        differ = [
            i
            for i in index
            if i not in difficulty
            or not math.isclose(difficulty[i], gamed.difficulty[i], rel_tol=1e-6, abs_tol=1e-9)
        ]
        if differ:
            other = getattr(difficulty, "path", None) or "the difficulty"
            raise LimaError(
                f"{gamed.path} and {other} disagree on the difficulty of instruction(s) {_shown(differ)}; "
                "AlpacaEval's GLM reads it from df_gamed.csv: give matching files"
            )
    prefs = np.array([np.nan if preferences[i] is None else float(preferences[i]) for i in order])
    delta = pd.Series([int(len_baseline[i]) - int(len_model[i]) for i in order])
    std = delta.std()
    if n < 2 or not std > 0:
        raise LimaError(
            "AlpacaEval's LC win rate needs answers of different lengths (it scales the length difference "
            f"by its standard deviation); got {n} judgment(s) with length-difference std {std}"
        )
    diff = np.array([lookup[i] for i in index])
    own = np.column_stack([np.tanh((delta / std).to_numpy()), diff, np.ones(n)])
    if gamed is not None:
        features = np.vstack(
            [
                np.column_stack(
                    [
                        np.tanh(gamed.std_delta_len),
                        gamed.instruction_difficulty,
                        gamed.not_gamed_baseline.astype(float),
                    ]
                ),
                own,
            ]
        )
        targets = np.concatenate([gamed.preference, prefs])
        ngb = np.concatenate([gamed.not_gamed_baseline, np.ones(n, dtype=bool)])
        weights: np.ndarray | None = ngb.astype(float) + (GAMED_WEIGHT * ~ngb).astype(float) / 2
    else:
        features, targets, weights = own, prefs, None
    keep = ~np.isnan(targets)
    if not keep[-n:].any():
        raise LimaError("AlpacaEval's LC win rate: no judgment has a preference to fit")
    model = _fit(features[keep], targets[keep], None if weights is None else weights[keep], n_splits)
    predicted = model.predict_proba(np.column_stack([np.zeros(n), diff, np.ones(n)]))[:, 1]
    name = "alpaca_eval_lc_win_rate" if gamed is not None else "alpaca_eval_lc_noreg_win_rate"
    return {
        name: float(predicted.mean() * 100),
        name.replace("win_rate", "standard_error"): float(pd.Series(predicted).sem() * 100),
        name.replace("win_rate", "weights"): dict(
            zip(
                ("length", "instruction_difficulty", "not_gamed_baseline"),
                map(float, model.coef_[0]),
                strict=True,
            )
        ),
    }


def _columns(names: list[Any]) -> str:
    shown = [str(n) if len(str(n)) <= 40 else str(n)[:40] + "…" for n in names[:8]]
    return "[" + ", ".join(shown) + (f", … ({len(names)} in all)" if len(names) > 8 else "") + "]"


def _shown(values: Sequence[int]) -> str:
    return ", ".join(map(str, values[:10])) + (f", … ({len(values)} in all)" if len(values) > 10 else "")
