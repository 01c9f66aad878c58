import numpy as np

from modelcore.calibration import ece, fit_and_report, fit_calibrator
from modelcore.grading import grade_agreement, grade_reference
from modelcore.tasks import make_task


def test_reference_and_agreement_grades() -> None:
    t = make_task("gcd", "easy", seed=0, index=1)
    assert grade_reference(t, t.answer).success
    assert grade_reference(t, " " + t.answer + " ").success
    assert not grade_reference(t, "x").success
    assert grade_agreement("07", "7").success
    assert not grade_agreement("8", "7").success
    assert not grade_agreement(None, "7").success


def test_calibration_reduces_ece_of_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0, 1, 4000)
    success = rng.uniform(0, 1, 4000) < true_p
    conf = np.sqrt(true_p)  # overconfident
    for method in ("isotonic", "platt"):
        cal, rep = fit_and_report(conf.tolist(), success.tolist(), method=method)
        assert rep.ece_raw > 0.1
        assert rep.ece_calibrated < 0.06
        assert 0.0 <= float(cal.predict([0.5])[0]) <= 1.0


def test_degenerate_history_predicts_base_rate() -> None:
    cal = fit_calibrator([0.2, 0.9], [True, True])
    assert float(cal.predict([0.1])[0]) == 1.0
    assert ece([1.0, 1.0], [True, True]) == 0.0
