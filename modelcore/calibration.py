"""Per-model calibration of raw confidence into P(success), learned from graded history.

The calibrator is a frozen value (isotonic breakpoints or Platt coefficients), so it can be
put in an event and replayed; fitting is a pure function of the graded history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Method = Literal["isotonic", "platt"]


@dataclass(frozen=True)
class Calibrator:
    """Maps raw confidence in [0, 1] to an estimate of P(success)."""

    method: Method
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    coef: float = 0.0
    intercept: float = 0.0

    def predict(self, conf: Sequence[float] | np.ndarray) -> np.ndarray:
        c = np.asarray(conf, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(c, self.xs, self.ys)
        return 1.0 / (1.0 + np.exp(-(self.coef * _logit(c) + self.intercept)))


def _logit(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 1e-6, 1 - 1e-6)
    return np.log(c / (1 - c))


def preload() -> None:
    """Import the fitting library now (an agent building its policy off the event loop), not
    at the first fit, in a handler."""
    import sklearn.isotonic
    import sklearn.linear_model  # noqa: F401


def fit_calibrator(
    confidences: Sequence[float], successes: Sequence[bool], method: Method = "isotonic"
) -> Calibrator:
    """Fit on graded history; with one outcome class only, predict its base rate."""
    x = np.asarray(confidences, dtype=np.float64)
    y = np.asarray(successes, dtype=np.float64)
    if len(x) == 0:
        return Calibrator("isotonic", (0.0, 1.0), (0.5, 0.5))
    if y.min() == y.max():
        rate = float(y[0])
        return Calibrator("isotonic", (0.0, 1.0), (rate, rate))
    from sklearn.isotonic import IsotonicRegression  # seconds to import: only when fitting
    from sklearn.linear_model import LogisticRegression

    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        return Calibrator(
            "isotonic",
            tuple(float(v) for v in iso.X_thresholds_),
            tuple(float(v) for v in iso.y_thresholds_),
        )
    lr = LogisticRegression(C=1e4).fit(_logit(x)[:, None], y)
    return Calibrator("platt", coef=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))


def ece(probs: Sequence[float] | np.ndarray, outcomes: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: |mean prob - success rate| per equal-width bin, weighted."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(outcomes, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


@dataclass(frozen=True)
class CalibrationReport:
    n_fit: int
    n_eval: int
    ece_raw: float
    ece_calibrated: float


def fit_and_report(
    confidences: Sequence[float],
    successes: Sequence[bool],
    method: Method = "isotonic",
    eval_share: float = 0.3,
    seed: int = 0,
) -> tuple[Calibrator, CalibrationReport]:
    """Fit on part of the history and measure ECE (raw vs calibrated) on the rest."""
    x = np.asarray(confidences, dtype=np.float64)
    y = np.asarray(successes, dtype=bool)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_eval = int(len(x) * eval_share)
    ev, fit = perm[:n_eval], perm[n_eval:]
    cal = fit_calibrator(x[fit].tolist(), y[fit].tolist(), method)
    report = CalibrationReport(
        len(fit), n_eval, ece(x[ev], y[ev].tolist()), ece(cal.predict(x[ev]), y[ev].tolist())
    )
    return cal, report
