"""Two CPU processes (DDP over gloo, configs/accelerate/cpu_ddp.yaml) train the same weights as one process
with twice the gradient accumulation (TRL-style invariant test); rank 0 alone writes checkpoints and logs.

torch's rendezvous store listens on all interfaces even with master address 127.0.0.1, so the launch runs in
a loopback-only network namespace (``unshare -n``, ``ip link set lo up``, ``GLOO_SOCKET_IFNAME=lo``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, run_cli
from tests.finetune.conftest import train_args

# One thread per rank: the two ranks share the CPU.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Dropout off: each rank draws its own masks, so only a deterministic model can match exactly.
SETTINGS = ("epochs=1", "batch_size=2", "dropout_top=0.0")


def _loopback_namespace() -> list[str]:
    """``unshare`` arguments for a new network namespace (as root, or in a user namespace), or a skip."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2) for a loopback-only network namespace")
    for args in (["unshare", "-n"], ["unshare", "-r", "-n"]):
        probe = subprocess.run([*args, "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
        if probe.returncode == 0:
            return args
    pytest.skip(f"unshare of a network namespace is not permitted here: {probe.stderr.strip()}")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_processes_match_one_with_doubled_accumulation(tiny_model_dir, train_files, tmp_path):
    unshare = _loopback_namespace()
    data, dev = train_files  # 8 records: 4 micro-batches of 2, i.e. 2 optimizer steps either way
    single = tmp_path / "single"
    result = run_cli(*train_args(tiny_model_dir, data, dev, single, *SETTINGS, "gradient_accumulation_steps=2"),
                     env=ONE_THREAD)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    ddp = tmp_path / "ddp"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(ROOT / "configs" / "accelerate" / "cpu_ddp.yaml"), "-m", "lima",
              *train_args(tiny_model_dir, data, dev, ddp, *SETTINGS, "gradient_accumulation_steps=1")]  # fmt: skip
    script = f"ip link set lo up && exec {shlex.join(launch)}"
    env = {**ONE_THREAD, "GLOO_SOCKET_IFNAME": "lo"}
    result = subprocess.run([*unshare, "sh", "-c", script], capture_output=True, text=True, timeout=600,
                            env={**os.environ, **env}, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    # Load order (issue #21): each rank loads its weights after the process group is up (FSDP's RAM-efficient
    # loading and ZeRO-3 init read it), onto its own device; it used to load before anything distributed existed.
    for rank in (0, 1):
        assert f"rank {rank}: loading weights with the process group up, device cpu" in result.stdout, (
            result.stdout
        )

    for run, world_size in ((single, 1), (ddp, 2)):
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["status"] == "ok" and manifest["world_size"] == world_size
        # one line per step: rank 0 only
        assert [r["step"] for r in _jsonl(run / "train_log.jsonl")] == [
            1,
            2,
        ]
        assert [e["epoch"] for e in _jsonl(run / "epochs.jsonl")] == [1]
    ours = load_file(ddp / "checkpoints" / "epoch-1" / "adapter_model.safetensors")
    expected = load_file(single / "checkpoints" / "epoch-1" / "adapter_model.safetensors")
    assert ours.keys() == expected.keys()
    # it trained
    assert any(not torch.equal(t, torch.zeros_like(t)) for k, t in expected.items() if "lora_B" in k)
    for key in expected:
        torch.testing.assert_close(ours[key], expected[key], rtol=1e-4, atol=1e-6, msg=key)
    ddp_epoch, single_epoch = _jsonl(ddp / "epochs.jsonl")[0], _jsonl(single / "epochs.jsonl")[0]
    assert ddp_epoch["dev_loss"] == pytest.approx(single_epoch["dev_loss"], rel=1e-4)
    # no temp dirs left by rank 1
    assert sorted(p.name for p in (ddp / "checkpoints").iterdir()) == ["epoch-1"]
