"""Embeddings in events: float16 little-endian bytes, base64 (384-d → 1,024 characters).

Compact enough to carry every query's embedding in the log, so that the log alone rebuilds
cells and prototypes; float16 keeps cosine distances to about 1e-3.
"""

from __future__ import annotations

import base64

import numpy as np


def encode_vector(vec: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vec, dtype="<f2").tobytes()).decode("ascii")


def decode_vector(text: str) -> np.ndarray:
    """Back to float32, renormalised to unit length (float16 rounding moves it slightly)."""
    vec = np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
