"""Judge throughput against a local OpenAI-compatible endpoint with a fixed artificial latency and K slots.

    .venv/bin/python bench/judge_throughput.py [--latency 0.2] [--slots 8] [--pairs 48]

Measures pairwise judgments/s (each pair judged in both orders = 2 requests) through the real
PairwiseJudge + LLMClient path for several client concurrencies, against the ideal min(c, K) / latency;
target: >= 0.8 x K / latency once concurrency >= K. Then warm-cache lookups/s (target >= 10,000/s).
Writes bench/results/judge_throughput.{json,md}.
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

from lima.core.endpoint import EndpointConfig  # noqa: E402
from lima.core.llm_client import LLMClient  # noqa: E402
from lima.eval.config import JudgeConfig  # noqa: E402
from lima.eval.judging import ORDERS, PairwiseJudge  # noqa: E402
from lima.eval.records import PairItem  # noqa: E402
from tests.eval.fake_openai import FakeOpenAI  # noqa: E402


def _items(n: int, tag: str) -> list[PairItem]:
    return [
        PairItem(f"{tag}-{i}", f"question {tag} {i}", f"answer one {i}", f"answer two {i}") for i in range(n)
    ]


def _config(base_url: str, concurrency: int) -> JudgeConfig:
    endpoint = EndpointConfig(base_url=base_url, model="bench", api_key_env=None, concurrency=concurrency)
    return JudgeConfig(endpoint=endpoint, parse_retries=0)


def run(latency: float, slots: int, pairs: int, concurrencies: list[int], cache_items: int) -> dict:
    rows = []
    with FakeOpenAI(
        latency_s=latency, slots=slots, reply=lambda body: "Answer A is significantly better"
    ) as fake:
        for concurrency in concurrencies:
            with tempfile.TemporaryDirectory() as tmp:
                config = _config(fake.base_url, concurrency)
                with LLMClient(config.endpoint, Path(tmp) / "cache.sqlite", progress=False) as client:
                    judge = PairwiseJudge(config, client)
                    start = time.perf_counter()
                    judgments = judge.judge(_items(pairs, f"c{concurrency}"))
                    elapsed = time.perf_counter() - start
                assert all(j["verdict"] == "tie" for j in judgments)  # always "first" -> inconsistent -> tie
            requests_per_s = 2 * pairs / elapsed
            ideal = min(concurrency, slots) / latency
            rows.append(
                {
                    "concurrency": concurrency,
                    "requests": 2 * pairs,
                    "seconds": round(elapsed, 3),
                    "requests_per_s": round(requests_per_s, 2),
                    "pair_judgments_per_s": round(pairs / elapsed, 2),
                    "ideal_requests_per_s": round(ideal, 2),
                    "efficiency": round(requests_per_s / ideal, 3),
                }
            )
            print(json.dumps(rows[-1]), flush=True)

        # Warm cache: fill the cache with cache_items pairs, then judge them (every request from SQLite).
        with tempfile.TemporaryDirectory() as tmp:
            config = _config(fake.base_url, 64)
            items = _items(cache_items, "warm")
            with LLMClient(config.endpoint, Path(tmp) / "cache.sqlite", progress=False) as client:
                judge = PairwiseJudge(config, client)
                for item in items:
                    for order in ORDERS:
                        key = judge._request(item, order, 0).key
                        client.cache.put(key, ["Answer A is significantly better"], 0, 0, "bench")
            with LLMClient(config.endpoint, Path(tmp) / "cache.sqlite", progress=False) as client:
                judge = PairwiseJudge(config, client)
                start = time.perf_counter()
                judge.judge(items)
                elapsed = time.perf_counter() - start
                assert client.stats.requests == 0 and client.stats.cache_hits == 2 * cache_items
    warm = {
        "lookups": 2 * cache_items,
        "seconds": round(elapsed, 3),
        "lookups_per_s": round(2 * cache_items / elapsed),
    }
    print(json.dumps({"warm_cache": warm}), flush=True)
    saturated = [r for r in rows if r["concurrency"] >= slots]
    return {
        "latency_s": latency,
        "slots": slots,
        "pairs": pairs,
        "target_requests_per_s": round(0.8 * slots / latency, 2),
        "rows": rows,
        "meets_target": all(r["requests_per_s"] >= 0.8 * slots / latency for r in saturated),
        "warm_cache": warm,
        "warm_cache_meets_target": warm["lookups_per_s"] >= 10_000,
    }


def write_results(result: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "judge_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Judge throughput: fake endpoint, latency {result['latency_s'] * 1000:.0f} ms, {result['slots']} slots",
        "",
        f"{result['pairs']} pairs per run, both orders (2 requests per pair). Target once concurrency >= slots: "
        f">= 0.8 x K / latency = {result['target_requests_per_s']} requests/s.",
        "",
        "| concurrency | requests/s | pair judgments/s | ideal requests/s | efficiency |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['concurrency']} | {r['requests_per_s']} | {r['pair_judgments_per_s']} | "
                     f"{r['ideal_requests_per_s']} | {r['efficiency']:.2f} |")  # fmt: skip
    warm = result["warm_cache"]
    lines += [
        "",
        f"Target met: {result['meets_target']}.",
        "",
        f"Warm cache: {warm['lookups']} lookups in {warm['seconds']} s = {warm['lookups_per_s']:,} lookups/s "
        f"(through PairwiseJudge, target >= 10,000/s: {result['warm_cache_meets_target']}).",
        "",
    ]
    (folder / "judge_throughput.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--cache-items", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    result = run(args.latency, args.slots, args.pairs, args.concurrency, args.cache_items)
    write_results(result, args.out)


if __name__ == "__main__":
    main()
