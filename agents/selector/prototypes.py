"""Behavioural prototypes P(M, k): up to K EMA centroids of E(x) over M's successes (§2).

They live in query space ("where this model has been good"). A success far from every
centroid founds a new one while fewer than K exist; otherwise the nearest centroid moves
toward it by (1 - decay). Banks are immutable: an update returns a new bank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIM = 384


@dataclass(frozen=True)
class Bank:
    """One member's centroids (k, d) and how many successes each has absorbed."""

    centroids: np.ndarray
    counts: tuple[int, ...]

    @classmethod
    def empty(cls, dim: int = DIM) -> Bank:
        return cls(np.zeros((0, dim), dtype=np.float32), ())

    def absorb(self, x: np.ndarray, k_max: int, decay: float, radius: float) -> Bank:
        if len(self.counts) == 0:
            return Bank(x[None, :].astype(np.float32), (1,))
        dist = np.linalg.norm(self.centroids - x, axis=1)
        nearest = int(np.argmin(dist))
        if dist[nearest] > radius and len(self.counts) < k_max:
            return Bank(np.vstack([self.centroids, x[None, :]]).astype(np.float32),
                        (*self.counts, 1))
        centroids = self.centroids.copy()
        centroids[nearest] = decay * centroids[nearest] + (1.0 - decay) * x
        counts = list(self.counts)
        counts[nearest] += 1
        return Bank(centroids, tuple(counts))


def distances(banks: dict[str, Bank], ids: list[str], x: np.ndarray, prior: float) -> np.ndarray:
    """d_beh(x, M) = min_k ||x - P(M, k)|| for each id, `prior` where M has no prototype.

    Vectorised over all members' centroids at once: O(N·K·d).
    """
    out = np.full(len(ids), prior, dtype=np.float64)
    stacked = [banks[m].centroids for m in ids if m in banks and len(banks[m].counts)]
    if not stacked:
        return out
    owners = np.concatenate([np.full(len(banks[m].counts), i) for i, m in enumerate(ids)
                             if m in banks and len(banks[m].counts)])
    all_c = np.vstack(stacked)
    d = np.sqrt(np.maximum(((all_c - x) ** 2).sum(axis=1), 0.0))
    mins = np.full(len(ids), np.inf)
    np.minimum.at(mins, owners, d)
    return np.where(np.isfinite(mins), mins, out)
