"""``lima calibrate``: run a judge over a human-labelled pairwise set (read by
:mod:`lima.eval.formats.labels`) and measure how well it agrees (:mod:`lima.eval.calibration`); the result is
stored under the judge and its labels file, so that every later ``lima judge`` with the same judge can show it.

Layer: runners. The names below re-exported from lower layers keep older imports working.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lima.eval.calibration import (  # noqa: F401  (re-exported)
    MIN_PAIRS,
    ONE_SIDED_CHANCE,
    _verdict_settings,
    calibration_block,
    calibration_note,
    calibration_problem,
    calibrations_dir,
    chance_levels,
    find_calibration,
    judge_hash,
    store_calibration,
    stored_block,
)
from lima.eval.formats.labels import LABEL_FORMATS, read_labelled_pairs
from lima.eval.parsers import VERDICTS

FORMATS = LABEL_FORMATS  # the old name, kept importable


def _arena_hard_prompt(config: Any) -> Any:
    """An Arena-Hard judge is calibrated with the messages it judges with (v2.0: labelled pairs have no Arena-Hard
    category, so they get its hard-prompt system prompt)."""
    if config.arena_hard_version is None:
        return None
    import dataclasses

    from lima.eval.protocols.arena_hard import pair_prompt

    return dataclasses.replace(pair_prompt(config), any_category=True)


def run_calibration(
    config: Any,
    labels: Path,
    fmt: str,
    out_dir: Path,
    limit: int | None = None,
    store: bool = True,
) -> dict[str, Any]:
    """Judge every labelled pair (both orders); write predictions, gold, judgments and calibration.json, and
    (``store``) record the calibration block under the judge's hash for later judge summaries and reports."""
    from lima.core.io import atomic_open, path_sha256, write_json
    from lima.core.llm_client import LLMClient
    from lima.core.manifest import RunManifest
    from lima.eval.agreement import agreement_report
    from lima.eval.judging import PairwiseJudge, is_soft

    labels = Path(labels)
    items, skipped = read_labelled_pairs(labels, fmt)
    if limit is not None:
        items = items[:limit]
    out_dir = Path(out_dir)
    cache = Path(config.cache) if config.cache else out_dir / "judge_cache.sqlite"
    with RunManifest(out_dir, "calibrate", config, inputs=[labels], seed=config.seed) as manifest:
        with LLMClient(config.endpoint, cache) as client:
            judge = PairwiseJudge(config, client, _arena_hard_prompt(config))
            judgments = judge.judge(items, desc=f"calibrating on {labels.name}")
            stats = client.stats.as_dict()
        ok = [(item, j) for item, j in zip(items, judgments, strict=True) if j["verdict"] is not None]
        pred = {item.id: {"verdict": j["verdict"], "category": item.meta.get("category")} for item, j in ok}
        gold = {
            item.id: {"verdict": item.meta["gold"], "category": item.meta.get("category")} for item in items
        }
        report = agreement_report(pred, gold)
        block = calibration_block(items, judgments, config.bootstrap, config.seed, soft=is_soft(config))
        golds = [item.meta["gold"] for item in items]
        block["labels"] = {
            "name": labels.name,
            "path": str(labels),
            "format": fmt,
            "sha256": path_sha256(labels),
            "pairs": len(items),
            "gold": {v: golds.count(v) for v in VERDICTS},
            "limit": limit,
        }
        block["judge_hash"] = judge_hash(config)
        block["cohen_kappa"] = report["cohen_kappa"]
        block["calibrated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        block["cost"] = {k: stats.get(k) for k in ("requests", "prompt_tokens", "completion_tokens")}
        result = {
            "agreement": report,
            **block,
            "note": calibration_note(block),
            "skipped_rows": skipped,
            "format": fmt,
            "client": stats,
        }
        if store:
            try:
                result["stored"] = str(store_calibration(config, block))
            except OSError as exc:  # a read-only cache dir must not lose the calibration just measured
                result["stored"] = None
                result["store_error"] = f"{calibrations_dir()}: {exc.strerror or exc}; set LIMA_CACHE_DIR"
        with atomic_open(out_dir / "predictions.jsonl") as fh:
            for key, row in pred.items():
                fh.write(json.dumps({"id": key, **row}, ensure_ascii=False) + "\n")
        with atomic_open(out_dir / "gold.jsonl") as fh:
            for key, row in gold.items():
                fh.write(
                    json.dumps(
                        {"id": key, "label": row["verdict"], "category": row["category"]}, ensure_ascii=False
                    )
                    + "\n"
                )
        with atomic_open(out_dir / "judgments.jsonl") as fh:
            for judgment in judgments:
                fh.write(json.dumps(judgment, ensure_ascii=False) + "\n")
        write_json(out_dir / "calibration.json", result)
        manifest.update(
            client=stats, result={k: v for k, v in result.items() if k not in ("agreement", "client")}
        )
    return result
