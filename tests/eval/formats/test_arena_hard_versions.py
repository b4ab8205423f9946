"""Arena-Hard as arena-hard-auto runs it, per version (issue #20), checked against its real files
(``data/arena_hard_real/``, excerpts; see its README) and against each version's ``show_result.py`` computation,
written here independently in the way the anchor does it (pandas, scikit-learn).

- v0.1: the messages lima sends equal the stored ``user_prompt`` of real games, after v0.1's system prompt; a
  game without a verdict weighs 0 and the other game of its question counts; BT win rate with a 95% interval;
- v2.0: the system prompt by category, the score as the mean of 100 bootstrap means, one summary per category
  (each against its own baseline).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from lima.core.config import load_config
from lima.core.errors import LimaError
from lima.eval.config import JudgeConfig
from lima.eval.parsers import parse_arena_hard_v01, parse_arena_hard_v2
from lima.eval.protocols.arena_hard import pair_prompt
from lima.eval.records import PairItem
from lima.eval.templates import load_template

ROOT = Path(__file__).resolve().parents[3]
REAL = Path(__file__).parent / "data" / "arena_hard_real"
V01 = REAL / "v0.1"
V01_JUDGMENTS = V01 / "model_judgment" / "gpt-4-1106-preview" / "gpt-3.5-turbo-0125.jsonl"
V2 = REAL / "v2"
# arena-hard-auto's git mirror, where it is at hand: the prompts are then compared with its own config files
ANCHOR = Path(os.environ.get("ARENA_HARD_AUTO_REPO", "/work/.mirror/lmarena+arena-hard-auto/repo"))
V01_COMMIT = "3071ef95d913bb5cd632641db336a3b6c7fe4bdd"  # the last commit before v2.0's code


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _v01_answers(model: str) -> dict[str, str]:
    return {
        r["question_id"]: r["choices"][0]["turns"][0]["content"]
        for r in _lines(V01 / "model_answer" / f"{model}.jsonl")
    }


def _v01_questions() -> dict[str, str]:
    return {r["question_id"]: r["turns"][0]["content"] for r in _lines(V01 / "question.jsonl")}


def _config(name: str, **fields) -> JudgeConfig:
    config = load_config(ROOT / "configs" / "judge" / name, JudgeConfig)
    return config.model_copy(update=fields) if fields else config


# --- the prompts, byte for byte -------------------------------------------------------------------------------


def test_shipped_prompts_are_arena_hard_autos_own_bytes():
    digests = {
        "arena_hard_system.txt": "03f68010febd7a6405102ef882b4dd5a9700c56b2e1ff286d3b38f5d3a929bbf",
        "arena_hard_v2_creative_writing_system.txt": "171489efbca7f19fb520e1b3c23783c76af7c723e770fe897a55f391684aa358",
        "arena_hard_user.txt": "93992b9d391aadc07b11df5f0dd4a5629d947c874e7d394d877f6b2609a8d2a1",
    }
    texts = {name: load_template(name, ()) for name in digests}
    assert {n: hashlib.sha256(t.encode()).hexdigest() for n, t in texts.items()} == digests
    if not (ANCHOR / "HEAD").exists() and not (ANCHOR / ".git").exists():
        pytest.skip("arena-hard-auto's repository is not at hand (set ARENA_HARD_AUTO_REPO)")
    import yaml

    def show(spec: str) -> str:
        run = subprocess.run(
            ["git", "-C", str(ANCHOR), "show", spec], capture_output=True, text=True, check=True
        )
        return run.stdout

    v01 = yaml.safe_load(show(f"{V01_COMMIT}:config/judge_config.yaml"))
    assert texts["arena_hard_system.txt"] == v01["system_prompt"]
    assert (v01["max_tokens"], v01["temperature"], v01["judge_model"]) == (4096, 0, "gpt-4-1106-preview")
    user = texts["arena_hard_user.txt"]
    assert (
        user.replace("{prompt}", "{question_1}")
        .replace("{answer_a}", "{answer_1}")
        .replace("{answer_b}", "{answer_2}")
        == v01["prompt_template"][0]
    )
    v2 = yaml.safe_load(show("HEAD:config/arena-hard-v2.0.yaml"))
    assert (
        user.replace("{prompt}", "{QUESTION}")
        .replace("{answer_a}", "{ANSWER_A}")
        .replace("{answer_b}", "{ANSWER_B}")
        == v2["prompt_template"]
    )
    settings: dict = {}
    exec(show("HEAD:utils/judge_utils.py"), settings)  # constants only
    judge = settings["JUDGE_SETTINGS"]
    assert texts["arena_hard_v2_creative_writing_system.txt"] == judge["creative_writing"]["system_prompt"]
    assert texts["arena_hard_system.txt"] == judge["hard_prompt"]["system_prompt"]
    ours = _config("openai_arena_hard_v2.yaml")
    assert (ours.max_tokens, ours.temperature, ours.endpoint.model) == (
        v2["max_tokens"],
        v2["temperature"],
        v2["judge_model"],
    )


def test_v01_messages_equal_the_stored_user_prompt_of_real_games():
    """Game 1 shows the baseline (gpt-4-0314, lima's model B) first: lima's order BA; game 2 is AB."""
    strategy = pair_prompt(_config("openai_arena_hard_v01.yaml"))
    system = load_template("arena_hard_system.txt", ())
    questions, model, baseline = (
        _v01_questions(),
        _v01_answers("gpt-3.5-turbo-0125"),
        _v01_answers("gpt-4-0314"),
    )
    checked = 0
    for row in _lines(V01_JUDGMENTS):
        if "user_prompt" not in row["games"][0]:
            continue  # rows kept for their scores only
        uid = row["uid"]
        item = PairItem(uid, questions[uid], model[uid], baseline[uid])
        for order, game in zip(("BA", "AB"), row["games"], strict=True):
            first, second = (baseline[uid], model[uid]) if order == "BA" else (model[uid], baseline[uid])
            assert strategy.messages(item, order, first, second) == [
                {"role": "system", "content": system},
                {"role": "user", "content": game["user_prompt"]},
            ]
            checked += 1
    assert checked == 6


def test_v01_judge_sends_the_stored_user_prompts(tmp_path):
    """End to end through ``run_judging`` (the judge's requests, recorded by a fake endpoint): the v0.1 config
    on arena-hard-auto's own answer files sends v0.1's system prompt and each game's stored user prompt, at
    temperature 0 with max_tokens 4096."""
    from lima.eval.judge import run_judging
    from tests.eval.fake_openai import FakeOpenAI

    stored = {
        (row["uid"], order): game["user_prompt"]
        for row in _lines(V01_JUDGMENTS)
        if "user_prompt" in row["games"][0]
        for order, game in zip(("BA", "AB"), row["games"], strict=True)
    }
    with FakeOpenAI(reply=lambda body: "My final verdict is: [[A>B]]") as fake:
        endpoint = {"base_url": fake.base_url, "model": "gpt-4-1106-preview", "api_key_env": None}
        config = _config("openai_arena_hard_v01.yaml", endpoint=JudgeConfig(endpoint=endpoint).endpoint)
        summary = run_judging(
            config,
            V01 / "model_answer" / "gpt-3.5-turbo-0125.jsonl",
            V01 / "model_answer" / "gpt-4-0314.jsonl",
            tmp_path,
        )
    system = load_template("arena_hard_system.txt", ())
    sent = sorted(json.dumps(b["messages"]) for b in fake.requests)
    assert sent == sorted(
        json.dumps([{"role": "system", "content": system}, {"role": "user", "content": text}])
        for text in stored.values()
    )
    assert {(b["max_tokens"], b["temperature"]) for b in fake.requests} == {(4096, 0.0)}
    # always "A slightly better": each question one win and one loss for the model -> 50
    assert (summary["arena_hard_version"], summary["arena_hard_score"], summary["arena_hard_battles"]) == (
        "0.1",
        50.0,
        6,
    )


def test_v01_dry_run_lists_the_stored_user_prompts(tmp_path, cli):
    """``lima judge --dry-run`` with the v0.1 config on arena-hard-auto's own answer files: every request line
    holds v0.1's system prompt and the stored user prompt of that game (order BA is game 1), at max_tokens 4096,
    and nothing is contacted."""
    out = tmp_path / "dry"
    args = ["judge", str(ROOT / "configs/judge/openai_arena_hard_v01.yaml"), "--out", str(out), "--dry-run"]
    args += ["--a", str(V01 / "model_answer" / "gpt-3.5-turbo-0125.jsonl")]
    args += ["--b", str(V01 / "model_answer" / "gpt-4-0314.jsonl"), "endpoint.base_url=http://127.0.0.1:9/v1"]
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    listed = _lines(out / "requests.jsonl")
    system = load_template("arena_hard_system.txt", ())
    games = {r["uid"]: r["games"] for r in _lines(V01_JUDGMENTS) if "user_prompt" in r["games"][0]}
    assert sorted((r["prompt_id"], r["order"]) for r in listed) == sorted(
        (u, o) for u in games for o in ("AB", "BA")
    )
    for row in listed:
        game = games[row["prompt_id"]][0 if row["order"] == "BA" else 1]
        assert row["messages"] == [
            {"role": "system", "content": system},
            {"role": "user", "content": game["user_prompt"]},
        ]
        assert (row["model"], row["max_tokens"], row["temperature"]) == ("gpt-4-1106-preview", 4096, 0.0)


# --- the verdict rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "level"),
    [
        ("My final verdict is: [[A>B]]", "A>B"),
        ("[[B>>A]] ... so again: [[B>>A]]", "B>>A"),  # one distinct label
        ("First [[A>B]], on reflection [[B>A]]", None),  # two distinct labels: v0.1 calls it null
        ("tie: [[A=B]]", "A=B"),
        ("[[A<B]]", "B>A"),
        ("[[A]]", None),  # a label, but no score in show_result.py
        ("My verdict: [A>B]", None),  # v0.1 reads double brackets only
        ("no label at all", None),
    ],
)
def test_v01_verdict_rule(reply, level):
    parsed = parse_arena_hard_v01(reply)
    assert (parsed.level if parsed else None) == level


@pytest.mark.parametrize(
    ("reply", "level"),
    [
        ("First [[A>B]], on reflection [[B>A]]", "B>A"),  # v2: the last label
        ("My verdict: [A>B]", "A>B"),  # single brackets, when no double-bracket label
        ("[[b>>a]]", "B>>A"),  # the reply is upper-cased first
        ("[[A=B]] and later [B>A]", "A=B"),  # the double-bracket pattern is tried first
        ("no label at all", None),
    ],
)
def test_v2_verdict_rule(reply, level):
    parsed = parse_arena_hard_v2(reply)
    assert (parsed.level if parsed else None) == level


def test_an_arena_hard_version_needs_its_own_parser():
    with pytest.raises(ValueError, match="parser: arena_hard_v2"):
        JudgeConfig(arena_hard_version="2.0", parser="arena_hard")
    assert JudgeConfig(arena_hard_version=2.0, parser="arena_hard_v2").arena_hard_version == "2.0"
    old, v01 = _config("openai_arena_hard.yaml"), _config("openai_arena_hard_v01.yaml")
    assert old == v01  # the old name is the v0.1 judge now


# --- v0.1's score: null games weigh 0, BT win rate, 95% -----------------------------------------------------------


def _show_result_v01(
    rows: list[dict], baseline: str = "gpt-4-0314", interval: bool = True
) -> tuple[float, float | None, float | None, int]:
    """v0.1's show_result.py computation, written the way it does it: battles (a strong verdict 3 times, a game
    without a known label weight 0), a Bradley-Terry fit by logistic regression (each battle twice, a tie once
    each way), 100 bootstrap fits on battles resampled by pandas from numpy's global generator seeded 42, the
    2.5th / 97.5th percentiles of the ratings, each turned into a win rate against the baseline in %."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    linear = pytest.importorskip("sklearn.linear_model")
    import math

    game1 = {
        "A=B": ("tie", 1),
        "A>B": ("model_a", 1),
        "A>>B": ("model_a", 3),
        "B>A": ("model_b", 1),
        "B>>A": ("model_b", 3),
    }
    game2 = {
        "A=B": ("tie", 1),
        "A>B": ("model_b", 1),
        "A>>B": ("model_b", 3),
        "B>A": ("model_a", 1),
        "B>>A": ("model_a", 3),
    }
    battles = []
    for row in rows:
        for table, game in ((game1, row["games"][0]), (game2, row["games"][1])):
            winner, weight = table.get(game["score"], (None, 0))
            battles += [{"model_a": baseline, "model_b": row["model"], "winner": winner}] * weight
    battles = pd.DataFrame(battles)

    def elo(df):
        models = pd.Series(range(2), index=[baseline, rows[0]["model"]])
        df = pd.concat([df, df], ignore_index=True)
        x = np.zeros([len(df), 2])
        x[np.arange(len(df)), models[df["model_a"]]] = math.log(10)
        x[np.arange(len(df)), models[df["model_b"]]] = -math.log(10)
        y = np.zeros(len(df))
        y[df["winner"] == "model_a"] = 1.0
        tie = (df["winner"] == "tie").to_numpy().copy()
        tie[len(tie) // 2 :] = False
        y[tie] = 1.0
        fit = linear.LogisticRegression(fit_intercept=False, penalty=None, tol=1e-8).fit(x, y)
        ratings = 400 * fit.coef_[0] + 1000
        return ratings[1] - ratings[0]  # the model's rating above the baseline's (anchored at 1000)

    win = lambda d: round(100 / (1 + 10 ** (-d / 400)), 2)  # noqa: E731
    if not interval:
        return win(elo(battles)), None, None, len(battles)
    np.random.seed(42)
    boot = [elo(battles.sample(frac=1.0, replace=True)) for _ in range(100)]
    return win(elo(battles)), win(np.percentile(boot, 2.5)), win(np.percentile(boot, 97.5)), len(battles)


def _with_null_games(tmp_path: Path) -> tuple[Path, list[dict]]:
    """The real excerpt with two games made null, as arena-hard-auto writes a game whose reply had no single
    verdict (score null): game 1 of the 3rd question and game 2 of the 6th. No real null game was at hand."""
    rows = _lines(V01_JUDGMENTS)
    rows[2]["games"][0]["score"] = None
    rows[5]["games"][1]["score"] = None
    path = tmp_path / "gpt-3.5-turbo-0125.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


@pytest.mark.parametrize("nulls", [False, True])
def test_v01_summary_equals_show_result(tmp_path, cli, nulls):
    """``lima import`` + ``lima summarize`` of a v0.1 judgment file give v0.1's show_result.py numbers: with
    null games, the other game of each such question still counts (lima used to drop the question). Without the
    null games, one of show_result.py's 100 seeded resamples of these 26 battles holds baseline wins only, which
    its logistic regression cannot fit (it raises), so there only the score is compared."""
    path, rows = _with_null_games(tmp_path) if nulls else (V01_JUDGMENTS, _lines(V01_JUDGMENTS))
    out = tmp_path / "j.jsonl"
    imported = cli("import", "arena_hard", str(path), "--out", str(out), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout).get("skipped_by_reason", {}) == {}
    summary = json.loads(cli("summarize", str(out), "--json").stdout)
    score, low, high, n = _show_result_v01(rows, interval=nulls)
    assert (summary["model_a"], summary["model_b"], summary["arena_hard_version"]) == (
        "gpt-3.5-turbo-0125",
        "gpt-4-0314",
        "0.1",
    )
    assert summary["arena_hard_battles"] == n == (26 - 6 if nulls else 26)
    assert summary["arena_hard_null_games"] == (2 if nulls else 0)
    assert summary["arena_hard_score"] == pytest.approx(score, abs=0.01)
    if nulls:
        assert summary["arena_hard_v01_ci95"] == pytest.approx([low, high], abs=0.01)
    own = summary["arena_hard_ci95_questions"]  # lima's own: questions resampled whole, beside the anchor's
    assert own[0] <= summary["arena_hard_score"] <= own[1]
    # the two questions with a null game have no pair verdict (errors), but their other game was scored
    assert (summary["prompts"], summary["errors"]) == (9, 2 if nulls else 0)


def test_v01_own_layout_reads_the_same_and_exports_back(tmp_path, cli):
    """v0.1's own judgment layout (``question_id``, no ``baseline``: show_result.py's default gpt-4-0314) gives
    the same summary as the re-released one; a row with a null game is exported back as it was."""
    path, rows = _with_null_games(tmp_path)
    own = tmp_path / "own" / "gpt-3.5-turbo-0125.jsonl"
    own.parent.mkdir()
    keep = ("model", "judge", "games")
    own.write_text(
        "".join(json.dumps({"question_id": r["uid"], **{k: r[k] for k in keep}}) + "\n" for r in rows)
    )
    summaries = []
    for source, name in ((path, "a"), (own, "b")):
        out = tmp_path / f"{name}.jsonl"
        assert cli("import", "arena_hard", str(source), "--out", str(out)).returncode == 0
        summaries.append(json.loads(cli("summarize", str(out), "--json").stdout))
    keys = (
        "model_b",
        "arena_hard_score",
        "arena_hard_v01_ci95",
        "arena_hard_battles",
        "arena_hard_null_games",
    )
    first, second = ({k: s[k] for k in keys} for s in summaries)
    assert first == second
    back = tmp_path / "back.jsonl"
    assert (
        cli("export-generations", "arena_hard", str(tmp_path / "b.jsonl"), "--out", str(back)).returncode == 0
    )
    assert _lines(back) == _lines(own)


def test_v01_judging_keeps_the_other_game_of_a_null_game(tmp_path):
    """lima's own v0.1 judging: a reply with two distinct labels is a null game (no re-ask in this config); the
    question's other game still counts, as in v0.1's show_result.py."""
    from lima.eval.judge import run_judging
    from tests.eval.fake_openai import FakeOpenAI

    def reply(body: dict) -> str:
        user = body["messages"][-1]["content"]
        if "can one discovery" in user and "Assistant A's Answer|>\nIt is theoretically" in user:
            return "[[A>B]] at first, but in the end [[B>>A]]"  # game 2 of that question: null
        return "My final verdict is: [[A>>B]]"

    with FakeOpenAI(reply=reply) as fake:
        endpoint = JudgeConfig(
            endpoint={"base_url": fake.base_url, "model": "gpt-4-1106-preview", "api_key_env": None}
        ).endpoint
        summary = run_judging(
            _config("openai_arena_hard_v01.yaml", endpoint=endpoint),
            V01 / "model_answer" / "gpt-3.5-turbo-0125.jsonl",
            V01 / "model_answer" / "gpt-4-0314.jsonl",
            tmp_path,
        )
    assert len(fake.requests) == 6  # two distinct labels: a null game, not asked again
    # questions 1 and 3: game 1 baseline >> (0 ×3), game 2 model >> (1 ×3); question 2: game 1 (0 ×3), game 2 null
    assert (summary["arena_hard_battles"], summary["arena_hard_null_games"]) == (15, 1)
    assert summary["arena_hard_score"] == round(100 * 6 / 15, 2)
    assert summary["errors"] == 1


def test_v01_asks_a_reply_without_label_to_go_on_in_the_same_conversation(tmp_path):
    """v0.1's second attempt: a reply without any label gets "continue your judgment …" after it, in the same
    conversation at temperature 0, and the verdict is read from both replies (as its stored judgment holds them);
    a reply with two distinct labels is not asked again."""
    from lima.eval.judge import run_judging
    from lima.eval.protocols.arena_hard import CONTINUE
    from tests.eval.fake_openai import FakeOpenAI

    def reply(body: dict) -> str:
        if body["messages"][-1]["content"] == CONTINUE:
            return "Then: [[B>A]]"
        if "Make a one line python" in body["messages"][-1]["content"]:
            return "I cannot decide yet."  # both games of the primes question: no label
        return "My final verdict is: [[A=B]]"

    with FakeOpenAI(reply=reply) as fake:
        endpoint = {"base_url": fake.base_url, "model": "gpt-4-1106-preview", "api_key_env": None}
        summary = run_judging(
            _config("openai_arena_hard_v01.yaml", endpoint=JudgeConfig(endpoint=endpoint).endpoint),
            V01 / "model_answer" / "gpt-3.5-turbo-0125.jsonl",
            V01 / "model_answer" / "gpt-4-0314.jsonl",
            tmp_path,
        )
    again = [b for b in fake.requests if b["messages"][-1]["content"] == CONTINUE]
    assert len(fake.requests) == 8 and len(again) == 2
    for body in again:
        system, user, assistant, go_on = body["messages"]
        assert (system["role"], user["role"], assistant, go_on["role"]) == (
            "system",
            "user",
            {"role": "assistant", "content": "I cannot decide yet."},
            "user",
        )
        assert body["temperature"] == 0.0
    judgments = _lines(tmp_path / "judgments.jsonl")
    primes = next(j for j in judgments if j["prompt_id"] == "38506f6f76c34b8ab8aec6223eee2548")
    assert [o["replies"] for o in primes["orders"]] == [["I cannot decide yet.", "Then: [[B>A]]"]] * 2
    assert [o["level"] for o in primes["orders"]] == ["B>A", "B>A"]
    assert summary["arena_hard_null_games"] == 0


# --- v2.0: system prompt by category, per-category baselines, mean of bootstrap means --------------------------------


def test_v2_system_prompt_by_category():
    questions = {r["uid"]: r for r in _lines(V2 / "question.jsonl")}
    strategy = pair_prompt(_config("openai_arena_hard_v2.yaml", questions=str(V2 / "question.jsonl")))
    og, creative = (
        load_template("arena_hard_system.txt", ()),
        load_template("arena_hard_v2_creative_writing_system.txt", ()),
    )
    for uid, question in questions.items():
        messages = strategy.messages(PairItem(uid, question["prompt"], "m", "base"), "BA", "base", "m")
        assert messages[0]["content"] == (creative if question["category"] == "creative_writing" else og)
        assert messages[1]["content"].startswith(
            f"<|User Prompt|>\n{question['prompt']}\n\n<|The Start of Assistant A's Answer|>\nbase\n"
        )
    without = pair_prompt(_config("openai_arena_hard_v2.yaml"))
    with pytest.raises(LimaError, match="questions="):
        without.messages(PairItem("x", "q", "a", "b"), "AB", "a", "b")


def _show_result_v2(rows: list[dict], category: str, seed: int) -> tuple[float, float, float, int]:
    """v2.0's show_result.py computation, written the way it does it: questions with a null game dropped, battles
    (game 2 then game 1, strong verdicts 3 times) of one category, 100 bootstrap means of battles resampled per
    model by pandas from numpy's global generator, their mean and 5th / 95th percentiles, in %."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    score = {"A>B": [1], "A>>B": [1] * 3, "A=B": [0.5], "B>A": [0], "B>>A": [0] * 3}
    data = pd.DataFrame(rows)
    data = data[~data.games.map(lambda g: g[0]["score"] is None or g[1]["score"] is None)].reset_index(
        drop=True
    )
    data["scores"] = data.games.map(lambda g: score[g[1]["score"]] + [1 - s for s in score[g[0]["score"]]])
    battles = data[["uid", "model", "category", "scores"]].explode("scores").reset_index(drop=True)
    battles = battles[battles.category == category][["model", "scores"]]
    battles["scores"] = battles["scores"].astype(float)
    np.random.seed(seed)
    means = pd.concat(
        [battles.groupby("model").sample(frac=1.0, replace=True).groupby("model").mean() for _ in range(100)]
    )
    return (
        round(100 * means["scores"].mean(), 2),
        round(100 * means["scores"].quantile(0.05), 2),
        round(100 * means["scores"].quantile(0.95), 2),
        len(battles),
    )


def test_v2_summary_is_per_category_and_equals_show_result(tmp_path, cli):
    """v2.0 judgment rows (its layout, on the real v2.0 questions; the verdicts are made up, no real v2.0
    judgment file being at hand): one summary per category, each against that category's baseline, with v2.0's
    score (the mean of 100 bootstrap means) and 90% interval; a question with a null game is left out."""
    questions = _lines(V2 / "question.jsonl")
    baselines = {"hard_prompt": "o3-mini-2025-01-31", "creative_writing": "gemini-2.0-flash-001"}
    verdicts = [("B>A", "A>>B"), ("A=B", "A>B"), ("B>>A", "B>A"), ("A>B", None)]
    rows = []
    for k, (question, (g1, g2)) in enumerate(zip(questions * 3, verdicts * 3, strict=True)):
        rows.append(
            {
                "uid": question["uid"] + ("" if k < 4 else f"-{k}"),
                "category": question["category"],
                "judge": "gpt-4.1",
                "model": "lima-7b",
                "baseline": baselines[question["category"]],
                "games": [
                    {"score": g1, "judgment": {"answer": f"[[{g1}]]"}, "prompt": []},
                    {"score": g2, "judgment": {"answer": f"[[{g2}]]" if g2 else "no verdict"}, "prompt": []},
                ],
            }
        )
    path = tmp_path / "lima-7b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "j.jsonl"
    assert cli("import", "arena_hard", str(path), "--out", str(out)).returncode == 0
    pairs = {p["category"]: p for p in json.loads(cli("summarize", str(out), "--json").stdout)["pairs"]}
    assert set(pairs) == set(baselines)
    # the same judgments summarized together (as one `lima judge` run): one block per category, never one score
    from lima.eval.summary import read_judgments, summarize_judgments

    together = summarize_judgments(read_judgments(out))["arena_hard_by_category"]
    assert {c: together[c]["arena_hard_score"] for c in baselines} == {
        c: pairs[c]["arena_hard_score"] for c in baselines
    }
    for category, baseline in baselines.items():
        score, low, high, n = _show_result_v2(rows, category, seed=0)
        pair = pairs[category]
        assert (pair["model_b"], pair["arena_hard_version"], pair["arena_hard_battles"]) == (
            baseline,
            "2.0",
            n,
        )
        assert pair["arena_hard_score"] == pytest.approx(score, abs=0.01)
        assert pair["arena_hard_v2_ci90"] == pytest.approx([low, high], abs=0.01)


def test_arena_hard_judges_are_calibrated_with_their_own_messages(shared_data, tmp_path):
    """``lima calibrate`` sends an Arena-Hard judge's own messages (v2.0: labelled pairs have no Arena-Hard
    category, so its hard-prompt system prompt), and its calibrations are filed apart from a plain judge's."""
    from lima.eval.calibrate import run_calibration
    from lima.eval.judging import judge_hash
    from tests.eval.fake_openai import FakeOpenAI

    with FakeOpenAI(reply=lambda body: "[[A>B]]") as fake:
        endpoint = JudgeConfig(
            endpoint={"base_url": fake.base_url, "model": "gpt-4.1", "api_key_env": None}
        ).endpoint
        config = _config("openai_arena_hard_v2.yaml", endpoint=endpoint, cache=str(tmp_path / "c.sqlite"))
        labels = shared_data / "preferences" / "llmbar_natural.json"
        run_calibration(config, labels, "llmbar", tmp_path / "cal", limit=2, store=False)
    system = load_template("arena_hard_system.txt", ())
    assert len(fake.requests) == 4
    assert {b["messages"][0]["content"] for b in fake.requests} == {system}
    assert all(b["messages"][1]["content"].startswith("<|User Prompt|>\n") for b in fake.requests)
    plain = config.model_copy(update={"arena_hard_version": None})
    assert judge_hash(config) != judge_hash(plain)
