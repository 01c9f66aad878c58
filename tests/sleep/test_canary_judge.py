"""Canary judge policy: the offline gate on TrainingCompleted, then one verdict per closed
cycle from the canary adapter's live grades (Wilson interval against the gate's baseline)."""

from __future__ import annotations

import random

import pytest

from agents.canary_judge.policy import CanaryConfig, make_policy, wilson
from events.control import (
    CanaryStarted,
    GapCell,
    GateStats,
    Promoted,
    RolledBack,
    SleepStarted,
    TrafficShifted,
    TrainingCompleted,
    TrainingFailed,
)
from events.envelope import Envelope, Payload
from events.serving import AdapterRef, QueryReceived, ResponseGraded
from events.vectors import encode_vector
from runtime.policy import Emit, run
from tests.wake.builders import closed, env, near, unit

NEW = AdapterRef(cell_id="*", path="adapters/a-v2", sha256="a" * 64)
OLD = "b" * 64  # the member's promoted version 1, still serving the rest of its traffic
TARGET = unit(5)
CELLS = [
    GapCell(cell_id="c1", centroid=encode_vector(TARGET), size=12, demand=0.1, cover=0.2,
            solvable_up=0.8, gap=0.064, radius=0.3),
    GapCell(cell_id="c2", centroid=encode_vector(unit(6)), size=8, demand=0.05, cover=0.3,
            solvable_up=0.7, gap=0.0245, radius=0.2),
]
GOOD = GateStats(target_before=0.3, target_after=0.6, outside_before=0.7, outside_after=0.68,
                 n_target=20, n_outside=30)
DUE = 0


def sleep(eid: str = "e1") -> Envelope[Payload]:
    return env(SleepStarted(envelope_id=eid, cycle=0, due_cycle=DUE, model_id="a",
                            target_cells=CELLS, step_budget=100, hardness=0.2, base_version=1))


def trained(gate: GateStats | None = GOOD, eid: str = "e1",
            adapters: tuple[AdapterRef, ...] = (NEW,)) -> Envelope[Payload]:
    return env(TrainingCompleted(envelope_id=eid, model_id="a", cycle=DUE, version=2,
                                 adapters=list(adapters), steps=100, train_flops=1e12,
                                 gate=gate))


def answer(qid: str, cycle: int, success: bool, adapter: str | None, model: str = "a",
           shadow: bool = False, final: bool = False) -> Envelope[Payload]:
    return env(ResponseGraded(query_id=qid, cycle=cycle, model_id=model, tier=0,
                              quality=float(success), success=success, method="reference",
                              final=final, shadow=shadow, confidence=0.5, cost_norm=0.2,
                              adapter=adapter), qid, cycle)


def cycle(n: int, target: list[bool] | None = None, outside: list[bool] | None = None,
          inside_shadow: list[bool] | None = None, old: list[bool] | None = None,
          other_member: list[bool] | None = None) -> list[Envelope[Payload]]:
    """One cycle's queries and grades, then its closing. `target`: the canary's served
    answers in its cells; `outside`/`inside_shadow`: its shadow answers far from / inside
    the cells; `old`: member a's previous adapter; `other_member`: member b with the canary's
    sha (neither counts)."""
    events: list[Envelope[Payload]] = []
    grades = 0

    def add(kind: str, successes: list[bool] | None, far: bool, **grade: object) -> None:
        nonlocal grades
        for i, ok in enumerate(successes or []):
            qid = f"c{n}-{kind}{i}"
            seed = 1000 * n + 100 * len(kind) + i
            vec = unit(10_000 + seed) if far else near(TARGET, seed, 0.02)
            events.append(env(QueryReceived(query_id=qid, cycle=n, text="reverse: ab",
                                            embedding=encode_vector(vec),
                                            shadow=bool(grade.get("shadow"))), qid, n))
            events.append(answer(qid, n, ok, **grade))  # type: ignore[arg-type]
            events.append(answer(qid, n, ok, final=True, **grade))  # type: ignore[arg-type]
            grades += 2

    add("t", target, False, adapter=NEW.sha256)
    add("out", outside, True, adapter=NEW.sha256, shadow=True)
    add("ins", inside_shadow, False, adapter=NEW.sha256, shadow=True)
    add("old", old, False, adapter=OLD)
    add("oth", other_member, False, adapter=NEW.sha256, model="b")
    queries = sum(isinstance(e.data, QueryReceived) for e in events)
    return [*events, closed(n, grades=grades, queries=queries)]


def emitted(decided: list[list[Emit]]) -> list[Emit]:
    return [e for d in decided for e in d]


def shifts(emits: list[Emit]) -> list[TrafficShifted]:
    out = [e.data for e in emits]
    assert all(isinstance(d, TrafficShifted) for d in out), out
    return out  # type: ignore[return-value]


def start() -> list[Envelope[Payload]]:
    return [sleep(), trained(), closed(DUE, grades=0, queries=0)]


# -- offline gate --------------------------------------------------------------------------


def test_gate_pass_starts_the_canary_at_the_initial_share() -> None:
    _, decided = run(make_policy(), [sleep(), trained()])
    assert decided[0] == []
    (emit,) = decided[1]
    data = emit.data
    assert isinstance(data, CanaryStarted)
    assert (data.envelope_id, data.model_id, data.version, data.cycle) == ("e1", "a", 2, DUE)
    assert data.share == 0.02 and data.adapter == NEW
    assert data.target_centroids == [c.centroid for c in CELLS]
    assert data.radius == 0.3  # the largest cell radius
    assert (data.gate_target_delta, data.gate_outside_delta) == (0.3, -0.02)
    assert emit.key == "canary|e1|start" and emit.subject == "a"


WRONG_LABELS = GateStats(target_before=0.3, target_after=0.05, outside_before=0.7,
                         outside_after=0.4, n_target=20, n_outside=30)


@pytest.mark.parametrize(("gate", "adapters", "why"), [
    (WRONG_LABELS, (NEW,), "gain -0.250"),
    (GOOD.model_copy(update={"target_after": 0.35}), (NEW,), "gain +0.050"),
    (GOOD.model_copy(update={"outside_after": 0.6}), (NEW,), "outside 0.700->0.600"),
    (GOOD.model_copy(update={"n_target": 4}), (NEW,), "too few held-out target queries"),
    (None, (NEW,), "no held-out measurement"),
    (GOOD, (), "no adapter"),
])
def test_gate_failure_rolls_back_and_never_starts_a_canary(
        gate: GateStats | None, adapters: tuple[AdapterRef, ...], why: str) -> None:
    log = [sleep(), trained(gate, adapters=adapters), closed(DUE, grades=0, queries=0),
           *cycle(1, target=[False] * 10)]
    state, decided = run(make_policy(), log)
    out = emitted(decided)
    assert [type(e.data) for e in out] == [RolledBack]  # and nothing for the later cycle
    back = out[0].data
    assert isinstance(back, RolledBack)
    assert (back.model_id, back.version, back.cycle, back.restored_version) == ("a", 2, DUE, 1)
    assert back.reason.startswith("offline gate") and why in back.reason
    assert out[0].key == "canary|e1|start"
    assert not state.canaries and not state.sleeps and not state.pending


def test_the_gate_boundary_is_decided_as_written() -> None:
    edge = GateStats(target_before=0.6, target_after=0.7, outside_before=0.7,
                     outside_after=0.65, n_target=5, n_outside=5)  # 0.7 - 0.6 < 0.1 in floats
    _, decided = run(make_policy(), [sleep(), trained(edge)])
    assert isinstance(decided[1][0].data, CanaryStarted)


@pytest.mark.parametrize("gate", [GOOD, WRONG_LABELS])
def test_training_completed_before_sleep_started_gives_the_same_decision(
        gate: GateStats) -> None:
    _, in_order = run(make_policy(), [sleep(), trained(gate)])
    state, reversed_ = run(make_policy(), [trained(gate), sleep()])
    assert reversed_[0] == []
    assert [(e.key, e.data) for e in reversed_[1]] == [(e.key, e.data) for e in in_order[1]]
    assert not state.pending and not state.sleeps


def test_training_failed_forgets_the_episode() -> None:
    state, decided = run(make_policy(), [trained(), env(TrainingFailed(
        envelope_id="e1", model_id="a", cycle=DUE, reason="oom")), sleep("e2")])
    assert emitted(decided) == []
    assert not state.pending and set(state.sleeps) == {"e2"}


# -- live slots ----------------------------------------------------------------------------


def test_successes_double_the_share_to_the_cap_then_promote_after_stable_slots() -> None:
    log = start() + [e for n in range(1, 9) for e in cycle(n, target=[True] * 10,
                                                           outside=[True] * 4)]
    state, decided = run(make_policy(), log)
    out = emitted(decided)[1:]  # after CanaryStarted
    slots = shifts(out[:-1])
    assert [(s.cycle, s.slot, s.share) for s in slots] == [
        (1, 0, 0.04), (2, 1, 0.08), (3, 2, 0.16), (4, 3, 0.32), (5, 4, 0.5), (6, 5, 0.5)]
    first = slots[0]
    assert (first.target_trials, first.target_successes, first.target_delta) == (10, 10, 0.7)
    assert (first.outside_trials, first.outside_successes, first.outside_delta) == (4, 4, 0.3)
    assert slots[-1].target_trials == 60  # cumulative over cycles 1..6
    promoted = out[-1].data
    assert isinstance(promoted, Promoted)
    assert (promoted.cycle, promoted.version, promoted.adapters) == (7, 2, [NEW])
    assert [e.key for e in out] == [f"canary|e1|{n}" for n in range(1, 8)]
    # cycle 8 closed too: nothing more, and no evidence is kept
    assert not state.canaries and not state.grades and not state.queries


def test_no_slot_is_judged_for_the_cycle_the_canary_started_in() -> None:
    _, decided = run(make_policy(), [sleep(), trained(), *cycle(DUE, target=[False] * 10)])
    assert [type(e.data) for e in emitted(decided)] == [CanaryStarted]


def test_target_failures_roll_back_to_the_base_version() -> None:
    log = start() + cycle(1, target=[False] * 10) + cycle(2, target=[True] * 10)
    state, decided = run(make_policy(), log)
    out = emitted(decided)[1:]
    assert len(out) == 1 and out[0].key == "canary|e1|1"
    back = out[0].data
    assert isinstance(back, RolledBack)
    assert (back.cycle, back.restored_version) == (1, 1)
    assert "target 0/10" in back.reason and "outside" not in back.reason
    assert not state.canaries


def test_failures_outside_the_target_cells_roll_back() -> None:
    log = start() + cycle(1, target=[True, False], outside=[False] * 10)
    _, decided = run(make_policy(), log)
    back = emitted(decided)[-1].data
    assert isinstance(back, RolledBack) and back.cycle == 1
    assert "outside 0/10" in back.reason and "target" not in back.reason


def test_no_trials_hold_the_share() -> None:
    log = start() + cycle(1) + cycle(2, inside_shadow=[False] * 10)
    _, decided = run(make_policy(), log)
    assert [(s.cycle, s.slot, s.share, s.target_trials, s.outside_trials, s.target_delta)
            for s in shifts(emitted(decided)[1:])] == [(1, 0, 0.02, 0, 0, 0.0),
                                                       (2, 1, 0.02, 0, 0, 0.0)]


def test_thin_evidence_holds_the_share() -> None:
    _, decided = run(make_policy(), start() + cycle(1, target=[True, False]))
    shift = emitted(decided)[-1].data
    assert isinstance(shift, TrafficShifted)
    assert (shift.share, shift.target_trials, shift.target_successes, shift.target_delta) == (
        0.02, 2, 1, 0.2)


def test_grades_of_another_adapter_or_member_are_not_counted() -> None:
    _, decided = run(make_policy(), start() + cycle(1, old=[False] * 10,
                                                     other_member=[False] * 10))
    shift = emitted(decided)[-1].data
    assert isinstance(shift, TrafficShifted)
    assert (shift.target_trials, shift.outside_trials, shift.share) == (0, 0, 0.02)
    # the same failures from the canary's adapter do roll it back
    _, decided = run(make_policy(), start() + cycle(1, target=[False] * 10))
    assert isinstance(emitted(decided)[-1].data, RolledBack)


def test_a_cycle_in_any_allowed_order_gives_identical_decisions() -> None:
    cycles = [cycle(1, target=[True] * 9 + [False], outside=[True] * 3,
                    inside_shadow=[False] * 2, old=[False] * 3),
              cycle(2, target=[True] * 6, outside=[True, False]),
              cycle(3, target=[False] * 4, old=[True])]
    body = [e for c in cycles for e in c]
    orders = [start() + body, [closed(DUE, grades=0, queries=0), trained(), sleep(), *body]]
    for seed in range(4):
        shuffled = list(body)
        random.Random(seed).shuffle(shuffled)
        orders.append(start() + shuffled)
    orders.append(start() + [e for c in cycles for e in [c[-1], *reversed(c[:-1])]])
    results = set()
    for log in orders:
        _, decided = run(make_policy(), log)
        results.add(tuple((e.key, e.data.model_dump_json()) for e in emitted(decided)))
    assert len(results) == 1
    (decisions,) = results
    assert [k for k, _ in decisions] == ["canary|e1|start", "canary|e1|1", "canary|e1|2",
                                         "canary|e1|3"]


def test_wilson_interval() -> None:
    lo, hi = wilson(10, 10, 1.96)
    assert round(lo, 4) == 0.7225 and hi == 1.0
    lo, hi = wilson(0, 10, 1.96)
    assert lo == 0.0 and round(hi, 4) == 0.2775


def test_config_defaults() -> None:
    assert CanaryConfig() == CanaryConfig(initial_share=0.02, cap=0.5, stable_slots=2,
                                          delta=0.05, min_gain=0.1, z=1.96, min_gate_target=5)
