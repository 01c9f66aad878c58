"""What the meta-selector knows as of a cycle: calibrators, θ_crit and expected gains.

All of it is fitted from events of earlier cycles only, in a fixed order, so that a decision
in cycle c is a function of the log before c whatever the topic interleaving (docs/design.md,
'Time, order and replay').
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from events.control import GapIndexUpdated
from events.vectors import decode_vector
from modelcore.calibration import Calibrator, fit_calibrator


class Graded(NamedTuple):
    """One graded answer, as calibration reads it (`version`: see `version_key`)."""

    cycle: int
    query_id: str
    version: str
    tier: int
    confidence: float
    success: bool


#: Graded answers an adapter version needs before its own confidence is believed.
MIN_VERSION_HISTORY = 20


def version_key(model_id: str, adapter: str | None) -> str:
    """What a calibrator is fitted for: a member's version (its adapter), not just the member —
    a promoted adapter answers with other confidences than the base it replaced."""
    return model_id if adapter is None else f"{model_id}@{adapter[:16]}"


class Cells(NamedTuple):
    """One cohort's gap map as escalation reads it."""

    centroids: np.ndarray
    solvable_up: np.ndarray
    cover: np.ndarray
    member_success: tuple[dict[str, float], ...]


@dataclass(frozen=True)
class Evidence:
    calibrators: dict[str, Calibrator]
    thetas: dict[str, float]
    tier_success: dict[int, float]  # smoothed success rate per tier
    cells: dict[int, Cells]  # tier -> its latest gap map


def calibrate_theta(p: np.ndarray, success: np.ndarray, delta: float, default: float) -> float:
    """θ_crit: the lowest threshold whose accepted-on-confidence answers are ≥ 1-δ right.

    Answers with calibrated P(success) ≥ θ are accepted without a second opinion; θ is the
    smallest value on a 0.05 grid where the measured precision of that set reaches 1 - δ.
    With too little history (< 30 answers) the configured default stands.
    """
    if len(p) < 30:
        return default
    for t in np.arange(0.05, 1.0, 0.05):
        chosen = p >= t
        if chosen.sum() >= 10 and success[chosen].mean() >= 1.0 - delta:
            return float(round(t, 2))
    return 1.0


def _fold(query_id: str) -> int:
    return hashlib.sha256(query_id.encode()).digest()[0] & 1


def cross_fitted(conf: np.ndarray, ok: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """P(success) of each answer from a calibrator fitted on the *other* fold, so that θ_crit
    is chosen on predictions the calibrator did not see (in-sample ones flatter it)."""
    out = np.empty(len(conf))
    for k in (0, 1):
        train, test = fold != k, fold == k
        if not test.any():
            continue
        if train.sum() < 2 or len(set(ok[train].tolist())) < 2:
            out[test] = ok[train].mean() if train.any() else 0.5
            continue
        out[test] = fit_calibrator(conf[train].tolist(), ok[train].tolist()).predict(conf[test])
    return out


def build(
    graded: Iterable[Graded], gaps: Iterable[GapIndexUpdated], *, history: int, delta: float,
    theta_default: float,
) -> Evidence:
    rows = sorted(graded)
    by_model: dict[str, list[Graded]] = {}
    tiers: dict[int, list[bool]] = {}
    for r in rows:
        by_model.setdefault(r.version, []).append(r)
        tiers.setdefault(r.tier, []).append(r.success)
    calibrators: dict[str, Calibrator] = {}
    thetas: dict[str, float] = {}
    for model, items in by_model.items():
        if "@" in model and len(items) < MIN_VERSION_HISTORY:
            continue  # a new version stays untrusted until enough of its answers are graded
        recent = items[-history:]
        conf = np.array([r.confidence for r in recent])
        ok = np.array([r.success for r in recent])
        calibrators[model] = fit_calibrator(conf.tolist(), ok.tolist())
        fold = np.array([_fold(r.query_id) for r in recent])
        thetas[model] = calibrate_theta(cross_fitted(conf, ok, fold), ok, delta, theta_default)
    tier_success = {t: (sum(v) + 1.0) / (len(v) + 2.0) for t, v in tiers.items()}
    cells: dict[int, Cells] = {}
    for gap in sorted(gaps, key=lambda g: (g.cycle, g.tier)):
        if gap.cells:
            cells[gap.tier] = Cells(
                np.vstack([decode_vector(c.centroid) for c in gap.cells]),
                np.array([c.solvable_up for c in gap.cells]),
                np.array([c.cover for c in gap.cells]),
                tuple(dict(c.member_success) for c in gap.cells))
    return Evidence(calibrators, thetas, tier_success, cells)
