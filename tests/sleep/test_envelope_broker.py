"""Envelope broker: one control phase per cycle, inside the budget, never the last worker."""

from __future__ import annotations

import dataclasses
import itertools

from agents.cohort import Cohort, Member
from agents.envelope_broker.policy import BrokerConfig, make_policy
from events.control import (
    CanaryStarted,
    ControlPhaseCompleted,
    EnvelopeClosed,
    GapCell,
    GapIndexUpdated,
    GateStats,
    Promoted,
    RolledBack,
    SleepStarted,
    TrafficShifted,
    TrainingCompleted,
    TrainingFailed,
)
from events.envelope import Envelope, Payload
from events.serving import AdapterRef
from events.vectors import encode_vector
from runtime.policy import run
from tests.wake.builders import env, unit

COHORT = Cohort((Member("a", 0, 1000, 0.5), Member("b", 0, 1000, 0.5),
                 Member("top", 1, 2000, 1.0)))
CFG = BrokerConfig(alpha=1 / 3, budget_per_cycle=3000.0, slot_cycles=2, cooldown_cycles=1,
                   min_window=0, rows_per_step=4, max_tokens=10, unit_flops=1e4)
ADAPTER = AdapterRef(cell_id="*", path="/store/x", sha256="c" * 64)
CELL = GapCell(cell_id="cell-0", centroid=encode_vector(unit(1)), size=20, demand=0.3,
               cover=0.1, solvable_up=1.0, gap=0.27, radius=0.4)


def gaps(cycle: int, mass: float = 0.27, hardness: dict | None = None) -> Envelope[Payload]:
    cells = [CELL] if mass else []
    return env(GapIndexUpdated(cycle=cycle, tier=0, cells=cells, gap_mass=mass,
                               hardness=hardness or {"a": 0.2, "b": 0.25}), "g", cycle)


def completed(due: int = 2) -> Envelope[Payload]:
    gate = GateStats(target_before=0.1, target_after=0.7, outside_before=0.9,
                     outside_after=0.9, n_target=20, n_outside=20)
    return env(TrainingCompleted(envelope_id="env-0", model_id="b", cycle=due, version=1,
                                 adapters=[ADAPTER], steps=10, train_flops=1.0, gate=gate))


def started(due: int = 2) -> Envelope[Payload]:
    return env(CanaryStarted(envelope_id="env-0", model_id="b", version=1, cycle=due,
                             share=0.02, adapter=ADAPTER, target_centroids=[CELL.centroid],
                             radius=0.4, gate_target_delta=0.6, gate_outside_delta=0.0))


def emitted(decided: list) -> list:
    return [e.data for d in decided for e in d]


def phases(decided: list) -> list[ControlPhaseCompleted]:
    return [d for d in emitted(decided) if isinstance(d, ControlPhaseCompleted)]


def test_the_hardest_member_sleeps_with_a_step_budget_the_slot_buys() -> None:
    _, decided = run(make_policy(COHORT, CFG), [gaps(0)])
    sleep = next(d for d in emitted(decided) if isinstance(d, SleepStarted))
    # slot = alpha·B_tot·slot_cycles = 2000 units; a step = 6·1000·4·10 / 1e4 = 24 units
    assert (sleep.model_id, sleep.step_budget, sleep.due_cycle) == ("b", 83, 2)
    assert [c.cell_id for c in sleep.target_cells] == ["cell-0"]
    (phase,) = phases(decided)
    assert phase.members["b"].state == "SLEEPING" and phase.members["a"].state == "WORKING"
    assert phase.train_used <= CFG.alpha * CFG.budget_per_cycle


def test_no_envelope_below_the_gap_mass_threshold() -> None:
    _, decided = run(make_policy(COHORT, CFG), [gaps(0, mass=0.0)])
    assert not any(isinstance(d, SleepStarted) for d in emitted(decided))
    assert len(phases(decided)) == 1


def test_the_phase_of_the_due_cycle_waits_for_the_outcome_and_the_gate() -> None:
    log = [gaps(0), gaps(1), gaps(2)]
    _, decided = run(make_policy(COHORT, CFG), log)
    assert [p.cycle for p in phases(decided)] == [0, 1]  # cycle 2 waits for training
    _, decided = run(make_policy(COHORT, CFG), [*log, completed()])
    assert [p.cycle for p in phases(decided)] == [0, 1]  # ... and for the gate's verdict
    _, decided = run(make_policy(COHORT, CFG), [*log, completed(), started()])
    last = phases(decided)[-1]
    assert last.cycle == 2 and last.members["b"].state == "CANARY"
    assert last.canaries[0].adapter == ADAPTER and last.canaries[0].share == 0.02


def test_a_failed_episode_closes_the_envelope_and_the_member_serves_as_before() -> None:
    failed = env(TrainingFailed(envelope_id="env-0", model_id="b", cycle=2, reason="NaN"))
    _, decided = run(make_policy(COHORT, CFG), [gaps(0), gaps(1), gaps(2), failed])
    out = emitted(decided)
    assert any(isinstance(d, EnvelopeClosed) and d.reason == "failed" for d in out)
    last = phases(decided)[-1]
    assert last.members["b"].state == "WORKING" and last.members["b"].adapter is None
    assert not last.canaries


def test_promotion_sets_the_new_version_and_returns_the_pools() -> None:
    shift = env(TrafficShifted(envelope_id="env-0", model_id="b", version=1, cycle=3, slot=0,
                               share=0.04, target_delta=0.5, outside_delta=0.0))
    promoted = env(Promoted(envelope_id="env-0", model_id="b", version=1, cycle=4,
                            adapters=[ADAPTER]))
    log = [gaps(0), gaps(1), gaps(2), completed(), started(), gaps(3), shift,
           gaps(4, mass=0.0), promoted]
    _, decided = run(make_policy(COHORT, CFG), log)
    by_cycle = {p.cycle: p for p in phases(decided)}
    assert by_cycle[3].canaries[0].share == 0.04
    assert by_cycle[4].members["b"].version == 1 and by_cycle[4].members["b"].adapter == ADAPTER
    assert by_cycle[4].members["b"].state == "WORKING" and not by_cycle[4].canaries
    assert by_cycle[4].members["b"].good_at == [CELL.centroid]  # where it was proven
    assert by_cycle[4].train_used == 0
    closes = [d for d in emitted(decided) if isinstance(d, EnvelopeClosed)]
    assert [c.reason for c in closes] == ["promoted"]


def test_a_promoted_member_does_not_sleep_again_and_the_last_worker_never_sleeps() -> None:
    promoted = env(Promoted(envelope_id="env-0", model_id="b", version=1, cycle=3,
                            adapters=[ADAPTER]))
    log = [gaps(0), gaps(1), gaps(2), completed(), started(), gaps(3), promoted,
           *(gaps(c) for c in range(4, 12))]
    _, decided = run(make_policy(COHORT, CFG), log)
    sleeps = [d for d in emitted(decided) if isinstance(d, SleepStarted)]
    assert [s.model_id for s in sleeps] == ["b", "a"]  # b's adapter is not stacked on
    for phase in phases(decided):
        states = [m.state for m in phase.members.values()]
        assert states.count("SLEEPING") < len(states)


def test_every_phase_keeps_the_budget_split() -> None:
    rolled = env(RolledBack(envelope_id="env-0", model_id="b", version=1, cycle=2,
                            restored_version=0, reason="offline gate"))
    log = [gaps(0), gaps(1), gaps(2), completed(), rolled, *(gaps(c) for c in range(3, 10))]
    _, decided = run(make_policy(COHORT, CFG), log)
    for phase in phases(decided):
        assert phase.train_used <= CFG.alpha * phase.budget_total + 1e-9
        assert phase.infer_reserved >= (1 - CFG.alpha) * phase.budget_total - 1e-9


def test_the_phase_is_the_same_whatever_order_its_inputs_arrive_in() -> None:
    base = [gaps(0), gaps(1)]
    late = [gaps(2), completed(), started()]
    outcomes = set()
    for order in itertools.permutations(late):
        _, decided = run(make_policy(COHORT, CFG), [*base, *order])
        outcomes.add(tuple(p.model_dump_json() for p in phases(decided)))
    assert len(outcomes) == 1


def test_a_cell_the_cohort_covers_is_not_a_target() -> None:
    covered = CELL.model_copy(update={"cell_id": "cell-1", "cover": 0.99, "gap": 0.003})
    gap = env(GapIndexUpdated(cycle=0, tier=0, cells=[CELL, covered], gap_mass=0.273,
                              hardness={"a": 0.2, "b": 0.25}), "g", 0)
    _, decided = run(make_policy(COHORT, CFG), [gap])
    sleep = next(d for d in emitted(decided) if isinstance(d, SleepStarted))
    assert [c.cell_id for c in sleep.target_cells] == ["cell-0"]


def test_no_episode_is_started_that_would_be_due_after_the_run_ends() -> None:
    def sleeps(horizon: int) -> list[int]:
        bounded = BrokerConfig(**{**CFG.__dict__, "horizon": horizon})
        _, decided = run(make_policy(COHORT, bounded), [gaps(0), gaps(1)])
        return [d.due_cycle for d in emitted(decided) if isinstance(d, SleepStarted)]

    assert sleeps(3) == [2]  # due at 2 in a run of cycles 0-2
    assert sleeps(2) == []  # due at 2 in a run of cycles 0-1: never started


def test_the_random_sleeper_baseline_draws_from_the_seed_not_the_gap() -> None:
    def sleeper(seed: int) -> str:
        cfg = dataclasses.replace(CFG, sleeper="random", seed=seed)
        _, decided = run(make_policy(COHORT, cfg), [gaps(0, hardness={"a": 0.0, "b": 0.9})])
        return next(d for d in emitted(decided) if isinstance(d, SleepStarted)).model_id

    drawn = [sleeper(seed) for seed in range(8)]
    assert set(drawn) == {"a", "b"}  # not always the hardest (b)
    assert drawn == [sleeper(seed) for seed in range(8)]  # a function of the seed
