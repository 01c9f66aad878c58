"""Meta-selector policy: Algorithm 1 with calibrated confidence, EVI and a calibrated θ_crit."""

from __future__ import annotations

import numpy as np

from agents.meta_selector.evidence import calibrate_theta
from agents.meta_selector.policy import MetaConfig, make_policy
from events.control import GapCell, GapIndexUpdated
from events.serving import Accepted, Escalated, ResponseGenerated
from events.vectors import encode_vector
from runtime.policy import run
from tests.wake.builders import COHORT, closed, env, graded, query, unit


def answer(qid: str, model: str = "a", tier: int = 0, conf: float = 0.3, cycle: int = 0):
    return env(ResponseGenerated(
        query_id=qid, cycle=cycle, model_id=model, tier=tier, answer="3", confidence=conf,
        prompt_tokens=8, answer_tokens=2, cost_flops=1e3, cost_norm=0.2), qid, cycle)


def test_low_confidence_escalates_to_the_next_tier_and_the_top_is_accepted() -> None:
    _, decided = run(make_policy(COHORT), [query("q", unit(1)), answer("q", conf=0.2),
                                           answer("q", "top", 1, conf=0.2)])
    up = decided[1][0].data
    assert isinstance(up, Escalated) and up.to_model == "top" and up.evi > 0
    assert up.text == "add: 1+2"
    assert isinstance(decided[2][0].data, Accepted)


def test_confident_answers_are_accepted() -> None:
    _, decided = run(make_policy(COHORT, MetaConfig(theta_default=0.8)),
                     [query("q", unit(1)), answer("q", conf=0.95)])
    verdict = decided[1][0].data
    assert isinstance(verdict, Accepted) and verdict.p_success == 0.95


def test_a_cell_where_the_cohort_is_as_good_as_the_top_never_escalates() -> None:
    x = unit(1)
    cell = GapCell(cell_id="c1", centroid=encode_vector(x), size=50, demand=0.5, cover=0.9,
                   solvable_up=0.92, gap=0.0)
    gap = env(GapIndexUpdated(cycle=0, tier=0, cells=[cell], gap_mass=0.0, hardness={}))
    # the index of cycle 0 applies from cycle 1: EVI = 0.02 - λ·(1.0 - 0.2) < 0
    _, decided = run(make_policy(COHORT), [gap, closed(0, grades=0, queries=0),
                                           query("q", x, cycle=1), answer("q", conf=0.1, cycle=1)])
    verdict = decided[3][0].data
    assert isinstance(verdict, Accepted) and verdict.evi < 0


def test_a_response_waits_for_its_query_whichever_arrives_first() -> None:
    _, decided = run(make_policy(COHORT), [answer("q", conf=0.2), query("q", unit(1))])
    assert decided[0] == []
    assert isinstance(decided[1][0].data, Escalated)


def test_confidence_is_calibrated_from_earlier_cycles() -> None:
    # model a is right whenever its raw confidence is high, wrong when low
    history = [query(f"h{i}", unit(i)) for i in range(60)] + [
        graded(f"h{i}", "a", success=i % 2 == 0, confidence=0.9 if i % 2 == 0 else 0.1)
        for i in range(60)]
    ask = [query("q", unit(99), cycle=1), answer("q", conf=0.85, cycle=1)]
    _, decided = run(make_policy(COHORT), [*history, *ask])
    assert decided[-1] == []  # cycle 0 is not closed: the answer waits for its evidence
    _, decided = run(make_policy(COHORT), [*history, *ask, closed(0, grades=60, queries=60)])
    verdict = decided[-1][0].data
    assert isinstance(verdict, Accepted) and verdict.p_success > 0.9 and verdict.theta < 0.5


def test_a_verdict_never_depends_on_its_own_grade_or_the_arrival_order() -> None:
    history = [query(f"h{i}", unit(i)) for i in range(40)] + [
        graded(f"h{i}", "a", success=i % 2 == 0, confidence=0.9 if i % 2 == 0 else 0.1)
        for i in range(40)] + [closed(0, grades=40, queries=40)]
    ask = [query("q", unit(99), cycle=1), answer("q", conf=0.5, cycle=1)]
    verdicts = set()
    for own in (True, False):
        mine = graded("q", "a", success=own, confidence=0.5, cycle=1)
        for log in ([*history, *ask], [mine, *ask, *history[::-1]], [*ask[::-1], mine, *history]):
            _, decided = run(make_policy(COHORT), log)
            (verdict,) = [e.data for d in decided for e in d]
            verdicts.add(verdict.model_dump_json())
    assert len(verdicts) == 1


def test_theta_is_the_lowest_threshold_with_the_wanted_precision() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 2000)
    success = rng.uniform(0, 1, 2000) < p  # perfectly calibrated
    theta = calibrate_theta(p, success, delta=0.1, default=0.5)
    assert 0.75 <= theta <= 0.85  # precision of {p ≥ t} is ≈ (1 + t) / 2
    assert calibrate_theta(p[:10], success[:10], delta=0.1, default=0.5) == 0.5


def test_the_gain_of_escalating_is_read_for_the_member_that_answered() -> None:
    """A cell one member masters has a high cover; an answer there from a member that fails it
    still escalates (its own success rate, not the cell's best, sets the gain)."""
    x = unit(1)
    cell = GapCell(cell_id="c1", centroid=encode_vector(x), size=50, demand=0.5, cover=0.95,
                   solvable_up=1.0, gap=0.02, member_success={"a": 0.05, "b": 0.95})
    gap = env(GapIndexUpdated(cycle=0, tier=0, cells=[cell], gap_mass=0.02, hardness={}))
    start = [gap, closed(0, grades=0, queries=0), query("q", x, cycle=1)]
    _, weak = run(make_policy(COHORT), [*start, answer("q", "a", conf=0.1, cycle=1)])
    _, strong = run(make_policy(COHORT), [*start, answer("q", "b", conf=0.1, cycle=1)])
    assert isinstance(weak[3][0].data, Escalated) and weak[3][0].data.evi > 0.7
    assert isinstance(strong[3][0].data, Accepted) and strong[3][0].data.evi < 0


def test_a_new_adapter_version_is_not_trusted_before_its_answers_are_graded() -> None:
    sure = env(ResponseGenerated(
        query_id="q", cycle=0, model_id="a", tier=0, answer="3", confidence=0.99,
        prompt_tokens=8, answer_tokens=2, cost_flops=1e3, cost_norm=0.2, adapter="f" * 64))
    _, decided = run(make_policy(COHORT, MetaConfig(theta_default=0.8)),
                     [query("q", unit(1)), sure])
    verdict = decided[1][0].data
    assert isinstance(verdict, Escalated) and verdict.p_success == 0.0


def test_baseline_rules_escalate_on_confidence_alone_or_never() -> None:
    x = unit(1)
    cell = GapCell(cell_id="c1", centroid=encode_vector(x), size=50, demand=0.5, cover=0.9,
                   solvable_up=0.92, gap=0.0)
    log = [env(GapIndexUpdated(cycle=0, tier=0, cells=[cell], gap_mass=0.0, hardness={})),
           closed(0, grades=0, queries=0), query("q", x, cycle=1),
           answer("q", conf=0.1, cycle=1)]
    _, evi = run(make_policy(COHORT), log)
    assert isinstance(evi[3][0].data, Accepted)  # EVI < 0: Algorithm 1 keeps the answer
    _, cascade = run(make_policy(COHORT, MetaConfig(rule="confidence")), log)
    assert isinstance(cascade[3][0].data, Escalated)  # a cascade escalates on confidence alone
    _, never = run(make_policy(COHORT, MetaConfig(rule="never")), log)
    assert isinstance(never[3][0].data, Accepted)
