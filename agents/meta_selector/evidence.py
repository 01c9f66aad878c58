"""What the meta-selector knows as of a cycle: calibrators, θ_crit and expected gains.

All of it is fitted from events of earlier cycles only, in a fixed order, so that a decision
in cycle c is a function of the log before c (DESIGN §4) whatever the topic interleaving.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from events.control import GapIndexUpdated
from events.vectors import decode_vector
from modelcore.calibration import Calibrator, fit_calibrator

Graded = tuple[int, str, str, int, float, bool]  # (cycle, query, model, tier, conf, success)


@dataclass(frozen=True)
class Evidence:
    calibrators: dict[str, Calibrator]
    thetas: dict[str, float]
    tier_success: dict[int, float]  # smoothed success rate per tier
    cells: dict[int, tuple[np.ndarray, np.ndarray]]  # tier -> (centroids, expected gain)


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


def build(
    graded: Iterable[Graded], gaps: Iterable[GapIndexUpdated], *, history: int, delta: float,
    theta_default: float,
) -> Evidence:
    rows = sorted(graded)
    by_model: dict[str, list[Graded]] = {}
    tiers: dict[int, list[bool]] = {}
    for r in rows:
        by_model.setdefault(r[2], []).append(r)
        tiers.setdefault(r[3], []).append(r[5])
    calibrators: dict[str, Calibrator] = {}
    thetas: dict[str, float] = {}
    for model, items in by_model.items():
        recent = items[-history:]
        conf = np.array([r[4] for r in recent])
        ok = np.array([r[5] for r in recent])
        cal = fit_calibrator(conf.tolist(), ok.tolist())
        calibrators[model] = cal
        thetas[model] = calibrate_theta(cal.predict(conf), ok, delta, theta_default)
    tier_success = {t: (sum(v) + 1.0) / (len(v) + 2.0) for t, v in tiers.items()}
    cells: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for gap in sorted(gaps, key=lambda g: (g.cycle, g.tier)):
        if gap.cells:
            cents = np.vstack([decode_vector(c.centroid) for c in gap.cells])
            gain = np.array([c.solvable_up - c.cover for c in gap.cells])
            cells[gap.tier] = (cents, gain)
    return Evidence(calibrators, thetas, tier_success, cells)
