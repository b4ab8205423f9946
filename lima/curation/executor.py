"""Run the per-shard step on worker processes (``executor: local``) or on a Dask cluster (``executor: dask``).

Dask because it is light (pure Python, one pip install), runs the same code on a laptop ``LocalCluster``
and on an existing cluster (``dask_address``: SSH, Kubernetes, or SLURM/PBS via dask-jobqueue), and its
futures API matches ``concurrent.futures``. Both executors call the same function on the same shards, so
their outputs are identical; workers must see ``out_dir`` on a shared filesystem.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from lima.core.errors import LimaError
from lima.curation.config import CurateConfig
from lima.curation.steps import process_shard
from lima.curation.types import Shard

Progress = Callable[[dict[str, Any]], None]


def run_shards(
    shards: list[Shard], config: CurateConfig, work_dir: str, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Process every shard; summaries come back in shard order whatever order they finish in."""
    config_data = config.model_dump(mode="json")
    if config.executor == "dask":
        results = _run_dask(shards, config, config_data, work_dir, progress)
    else:
        results = _run_local(shards, config, config_data, work_dir, progress)
    return [results[i] for i in range(len(shards))]


def _run_local(shards, config, config_data, work_dir, progress) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    if config.workers == 1 or len(shards) == 1:
        for i, shard in enumerate(shards):
            results[i] = process_shard(shard, config_data, work_dir)
            if progress:
                progress(results[i])
        return results
    # spawn: workers start clean (no inherited threads or loaded models from the parent).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(config.workers, len(shards)), mp_context=context) as pool:
        futures = {
            pool.submit(process_shard, shard, config_data, work_dir): i for i, shard in enumerate(shards)
        }
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress:
                    progress(results[futures[future]])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _run_dask(shards, config, config_data, work_dir, progress) -> dict[int, dict[str, Any]]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_as_completed
    except ImportError:
        raise LimaError("executor: dask needs dask[distributed]; pip install 'lima-align[scale]'") from None
    cluster = None
    try:
        if config.dask_address:
            client = Client(config.dask_address, timeout="30s")
        else:
            cluster = LocalCluster(
                n_workers=config.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
            )
            client = Client(cluster)
    except OSError as exc:
        raise LimaError(f"dask_address {config.dask_address}: cannot connect ({exc})") from None
    try:
        futures = client.map(process_shard, shards, config_data=config_data, work_dir=work_dir, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, dict[str, Any]] = {}
        for future in dask_as_completed(futures):
            results[index[future.key]] = future.result()
            if progress:
                progress(results[index[future.key]])
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
