"""Embeddings in events: float16 little-endian bytes, base64 (384-d → 1,024 characters).

Compact enough to carry every query's embedding in the log, so that the log alone rebuilds
cells and prototypes; float16 keeps cosine distances to about 1e-3.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import numpy as np
from pydantic import AfterValidator

#: Dimension of every embedding in events (all-MiniLM-L6-v2 and its stand-ins).
DIM = 384
#: Characters of one encoded embedding: DIM float16 values, base64.
ENCODED_LEN = 4 * ((2 * DIM + 2) // 3)


def encode_vector(vec: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vec, dtype="<f2").tobytes()).decode("ascii")


def decode_vector(text: str) -> np.ndarray:
    """Back to float32, renormalised to unit length (float16 rounding moves it slightly)."""
    vec = np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def check_vector(text: str) -> str:
    """Validate an encoded embedding, so that no policy ever decodes one it cannot use:
    exactly DIM finite float16 values with a non-zero norm."""
    if len(text) != ENCODED_LEN:
        raise ValueError(f"an embedding is {ENCODED_LEN} base64 characters ({DIM} float16), "
                         f"got {len(text)}")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"an embedding must be base64: {exc}") from exc
    vec = np.frombuffer(raw, dtype="<f2")
    if not np.isfinite(vec).all() or not np.any(vec):
        raise ValueError("an embedding must be finite and non-zero")
    return text


def _optional(text: str) -> str:
    return text and check_vector(text)


#: An encoded embedding in a payload field (validated on decode).
Vector = Annotated[str, AfterValidator(check_vector)]
#: The same, or "" where none was computed.
OptionalVector = Annotated[str, AfterValidator(_optional)]
