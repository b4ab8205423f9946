"""What a verdict costs on the embedded judge, per verdict mode, and how often it agrees with human labels.

    .venv/bin/python bench/verdict_cost.py [--pairs 20] [--labels data/judge_pairs.jsonl --format lima]

One llama.cpp judge server (the embedded SmolLM2-135M GGUF) serves every mode in turn; each mode judges the
same labelled pairs in both orders through the real PairwiseJudge + LLMClient path, with a fresh cache.
Per mode: HTTP requests (re-asks included), prompt and completion tokens, wall seconds, errors (pairs
without a verdict), and agreement with the gold labels (accuracy, tie-discounted accuracy) plus position
consistency. "before" is the embedded configs as they were (free text, last-verdict parsing, re-asks);
target for the new modes: 2 requests per pair (one per order), no re-asks, 0 errors.
Writes bench/results/verdict_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lima.core.cli_util import raise_on_sigterm  # noqa: E402
from lima.core.judge_server import JudgeServer  # noqa: E402
from lima.core.llm_client import LLMClient  # noqa: E402
from lima.eval.calibrate import read_labelled_pairs  # noqa: E402
from lima.eval.config import JudgeConfig  # noqa: E402
from lima.eval.judging import PairwiseJudge  # noqa: E402
from lima.eval.metrics import agreement  # noqa: E402

BEFORE = {"max_tokens": 64, "parse_retries": 1, "max_answer_chars": 2000, "verdict": "text"}
MODES: dict[str, dict] = {
    "before: text lima_3way": {**BEFORE, "template": "lima_3way.txt", "parser": "lima_3way"},
    "before: text mtbench": {**BEFORE, "template": "mtbench_pairwise.txt", "parser": "last_tag", "max_tokens": 96},
    "structured lima_3way": {
        "verdict": "structured", "template": "lima_3way_json.txt", "parser": "lima_3way",
        "max_tokens": 160, "reasoning_max_chars": 300, "parse_retries": 1, "max_answer_chars": 2000,
    },
    "logprobs": {"verdict": "logprobs", "template": "pairwise_logprobs.txt", "max_answer_chars": 2000},
}  # fmt: skip


def _labelled(path: Path, fmt: str, pairs: int):
    items, _ = read_labelled_pairs(path, fmt)
    return items[:pairs]


def run(labels: Path, fmt: str, pairs: int, modes: list[str]) -> dict:
    items = _labelled(labels, fmt, pairs)
    rows = []
    with JudgeServer(n_threads=2) as server:
        for name in modes:
            endpoint = {
                "base_url": server.base_url,
                "model": server.alias,
                "api_key_env": None,
                "concurrency": 1,
            }
            config = JudgeConfig(endpoint=endpoint, server="llamacpp", **MODES[name])
            with (
                tempfile.TemporaryDirectory() as tmp,
                LLMClient(config.endpoint, Path(tmp) / "cache.sqlite", progress=False) as client,
            ):
                start = time.perf_counter()
                judgments = PairwiseJudge(config, client).judge(items)
                seconds = time.perf_counter() - start
                stats = client.stats.as_dict()
            ok = [(item, j) for item, j in zip(items, judgments, strict=True) if j["verdict"] is not None]
            agree = agreement([j["verdict"] for _, j in ok], [item.meta["gold"] for item, _ in ok])
            # Does the soft preference P(A better) point the humans' way? Over pairs with a decisive gold label.
            signs = [
                0.5
                if j["preference"] == 0.5
                else float((j["preference"] > 0.5) == (item.meta["gold"] == "A"))
                for item, j in ok
                if item.meta["gold"] != "tie"
            ]
            rows.append(
                {
                    "mode": name,
                    "pairs": len(items),
                    "requests": stats["requests"],
                    "requests_per_pair": round(stats["requests"] / len(items), 2),
                    "prompt_tokens": stats["prompt_tokens"],
                    "completion_tokens": stats["completion_tokens"],
                    "seconds": round(seconds, 1),
                    "seconds_per_pair": round(seconds / len(items), 2),
                    "errors": len(items) - len(ok),
                    "accuracy": agree["accuracy"],
                    "tie_discounted_accuracy": agree["tie_discounted_accuracy"],
                    "position_consistency": round(100 * sum(j["consistent"] for _, j in ok) / len(ok), 1)
                    if ok
                    else None,
                    "verdicts": {v: sum(j["verdict"] == v for _, j in ok) for v in ("A", "B", "tie")},
                    "preference_sign_accuracy": round(sum(signs) / len(signs), 4) if signs else None,
                    "preferences": [
                        {"id": item.id, "gold": item.meta["gold"], "preference": j["preference"]}
                        for item, j in ok
                    ],
                }
            )
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "preferences"}), flush=True)
    gold = [item.meta["gold"] for item in items]
    return {
        "labels": str(labels),
        "format": fmt,
        "gold": {v: gold.count(v) for v in ("A", "B", "tie")},
        "model": "embedded:smollm2-135m-instruct (llama.cpp server, 2 threads)",
        "rows": rows,
    }


def _markdown(result: dict) -> str:
    lines = [
        "# Verdict cost on the embedded judge",
        "",
        f"`bench/verdict_cost.py`: {result['model']}, {result['rows'][0]['pairs']} labelled pairs from "
        f"`{result['labels']}` (`--format {result['format']}`; gold A/B/tie = {result['gold']}), each pair in "
        "both orders. Agreement is over pairs with a verdict; errors are pairs without one. Preference sign "
        "accuracy: over pairs with a decisive gold label, how often P(A better) (both orders averaged) is on the "
        "humans' side of 0.5. Seconds are wall time on the shared 2-core build machine, under load.",
        "",
        "| mode | requests/pair | prompt tok | completion tok | s/pair | errors | accuracy | tie-disc. acc. "
        "| preference sign acc. | pos. consistency % | verdicts A/B/tie |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        v = r["verdicts"]
        lines.append(
            f"| {r['mode']} | {r['requests_per_pair']} | {r['prompt_tokens']} | {r['completion_tokens']} | "
            f"{r['seconds_per_pair']} | {r['errors']}/{r['pairs']} | {r['accuracy']} | "
            f"{r['tie_discounted_accuracy']} | {r['preference_sign_accuracy']} | {r['position_consistency']} | "
            f"{v['A']}/{v['B']}/{v['tie']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=ROOT / "data" / "judge_pairs.jsonl")
    parser.add_argument("--format", default="lima")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "verdict_cost")
    args = parser.parse_args()
    raise_on_sigterm()  # a killed bench still stops its judge server
    result = run(args.labels, args.format, args.pairs, args.modes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))


if __name__ == "__main__":
    main()
