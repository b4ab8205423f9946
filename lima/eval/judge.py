"""``lima judge``: judge generations A against B — pairs matched by prompt, every pair in both orders by the
judging engine (:mod:`lima.eval.judging`), the benchmark's prompt strategy picked by the protocol registry
(:mod:`lima.eval.protocols`), then the summary (:mod:`lima.eval.summary`, the same keys as ``lima summarize``),
the judge's calibration, a chart and an HTML report.

    summary = run_judging(load_config("configs/judge/embedded_lima.yaml", JudgeConfig), a, b, out_dir)

Layer: runners. The names below re-exported from lower layers keep older imports working.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lima.core.dry_run import DryRunClient
from lima.core.errors import LimaError
from lima.core.io import atomic_open, write_json
from lima.core.llm_client import LLMClient
from lima.eval.calibration import calibration_note, find_calibration
from lima.eval.config import JudgeConfig
from lima.eval.formats import detect
from lima.eval.inputs import read_generations
from lima.eval.judging import (  # noqa: F401  (re-exported)
    ORDERS,
    PairwiseJudge,
    annotator_hash,
    is_soft,
    judge_config_hash,
    judge_hash,
    judge_name,
)
from lima.eval.metrics import combine  # noqa: F401  (re-exported)
from lima.eval.protocols import protocol_for_pairs
from lima.eval.records import PairItem, first_samples, judged_prompt, model_name, pair_generations
from lima.eval.report import winrate_chart, write_judge_report
from lima.eval.summary import summarize_judgments
from lima.eval.templates import fill, load_template, read_grammar  # noqa: F401  (re-exported)


def summarize(judgments: list[dict[str, Any]], config: JudgeConfig) -> dict[str, Any]:
    """The summary keys of :func:`lima.eval.summary.summarize_judgments` (what ``lima summarize`` gives for
    the same file), the soft ones only for a soft judge, and how this judge combined and gave its verdicts."""
    summary = summarize_judgments(judgments, config.bootstrap, config.seed, soft=is_soft(config))
    summary.update(
        combine=config.combine, verdict_mode="panel" if config.panel is not None else config.verdict
    )
    return summary


def check_benchmark_files(config: Any) -> None:
    """``questions:`` and ``references:`` (a judge's or a grader's) name files that exist, before any request."""
    wanted = {
        "questions": "the benchmark's question.jsonl (FastChat: fastchat/llm_judge/data/mt_bench/question.jsonl; "
        "arena-hard-auto v2: data/arena-hard-v2.0/question.jsonl)",
        "references": "FastChat's fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl",
    }
    for key, what in wanted.items():
        path = getattr(config, key, None)
        if path and not Path(path).is_file():
            raise LimaError(
                f"{key}: {path} not found; give {what} in the config or as {key}=PATH, or remove the key"
            )


def run_judging(
    config: JudgeConfig,
    gen_a: Path,
    gen_b: Path,
    out_dir: Path,
    limit: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Judge generations A against B; writes judgments.jsonl, summary.json, winrate.png, report.html.

    ``dry_run``: write every request that would be sent to ``out_dir/requests.jsonl`` instead (nothing is
    contacted) and return their count, estimated tokens and cost (:mod:`lima.core.dry_run`)."""
    from lima.core.manifest import RunManifest

    gen_a, gen_b, out_dir = Path(gen_a), Path(gen_b), Path(out_dir)
    if config.calibration_labels and not Path(config.calibration_labels).is_file():  # before any request
        raise LimaError(
            f"calibration_labels: {config.calibration_labels} not found; give the labels file the judge was "
            "calibrated on, or remove the field"
        )
    check_benchmark_files(config)
    records_a = first_samples(read_generations(gen_a, config.allow_empty))
    records_b = first_samples(read_generations(gen_b, config.allow_empty))
    if detect(gen_b) is not None:  # a leaderboard model's answers cover the whole benchmark: keep A's prompts
        ids_a = {r["prompt_id"] for r in records_a}
        records_b = [r for r in records_b if r["prompt_id"] in ids_a]
    if not {r["prompt_id"] for r in records_a} & {r["prompt_id"] for r in records_b}:
        raise LimaError(
            f"{gen_a} and {gen_b}: no prompt in common, so nothing to judge; "
            "generate both from the same prompt file"
        )
    pairs = pair_generations(records_a, records_b, gen_a, gen_b)
    if limit is not None:
        pairs = pairs[:limit]
    name_a, name_b = model_name(records_a, gen_a), model_name(records_b, gen_b)
    if name_a == name_b:
        name_a, name_b = f"{name_a} (A)", f"{name_b} (B)"
    protocol = protocol_for_pairs([gen_a, gen_b], [records_a, records_b], config)
    pair_meta = protocol.pair_meta if protocol is not None and protocol.pair_meta else None
    items = [
        PairItem(
            a["prompt_id"], judged_prompt(a), a["output"], b["output"], pair_meta(a, b) if pair_meta else {}
        )
        for a, b in pairs
    ]
    # before any request: e.g. MT-Bench's questions, references and each model's turn-1 answer
    prompts = protocol.pair_prompt(config, items) if protocol is not None and protocol.pair_prompt else None
    if dry_run:
        with DryRunClient(config.endpoint) as recorder:
            PairwiseJudge(config, recorder, prompts).judge(items, desc="dry run")
        path = recorder.write(out_dir / "requests.jsonl")
        return {"model_a": name_a, "model_b": name_b, "requests_file": str(path), **recorder.totals()}
    cache = Path(config.cache) if config.cache else out_dir / "judge_cache.sqlite"
    with RunManifest(out_dir, "judge", config, inputs=[gen_a, gen_b], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            # e.g. MT-Bench's pair-v2 template: later turns judged as FastChat shows them (each model's conversation)
            judge = PairwiseJudge(config, client, prompts)
            try:
                judgments = judge.judge(items, desc=f"judging {name_a} vs {name_b}")
            finally:
                manifest.update(client=client.stats.as_dict())
            stats = client.stats.as_dict()
        summary = {
            "model_a": name_a,
            "model_b": name_b,
            "judge": judge_name(config),
            "template": "panel" if config.panel is not None else config.template,
            **summarize(judgments, config),
            "client": stats,
        }
        summary["calibration"] = find_calibration(config)  # how far this judge agrees with humans, if known
        summary["judge_agreement"] = calibration_note(summary["calibration"])
        with atomic_open(out_dir / "judgments.jsonl") as fh:
            for judgment in judgments:
                fh.write(json.dumps(judgment, ensure_ascii=False) + "\n")
        write_json(out_dir / "summary.json", summary)
        winrate_chart({name_b: summary}, out_dir / "winrate.png", model=name_a)
        write_judge_report(summary, judgments, out_dir / "report.html", out_dir / "winrate.png")
        manifest.update(
            outputs=sorted(os.listdir(out_dir)),
            summary={k: summary[k] for k in ("n", "errors", "win_rate", "ci95", "length_adjusted_win_rate")},
        )
    return summary
