"""Canary judge: decides the fate of a sleeper's new version — CanaryStarted or RolledBack
once, then per cycle TrafficShifted, Promoted or RolledBack. It measures nothing: the trainer
measured the version against its base on held-out log queries (TrainingCompleted.gate), and
the grader grades the answers the canary gives; the judge decides from those events alone.

Offline gate, once per episode: a TrainingCompleted is judged when its SleepStarted (target
cells, base version) is also in — whichever came first. It passes iff the gate measured at
least `min_gate_target` held-out target queries, the target accuracy rose by `min_gain` and
accuracy outside fell by at most `delta`: CanaryStarted at `initial_share`, else RolledBack.

Live slots: a canary started at cycle d serves from cycle d+1. Each cycle n ≥ d+1 it is
judged once, when the grader's closing of n is complete (agents.cycles: the closing count,
every grade and every query of n folded), on the cumulative evidence of cycles d+1..n: its
non-shadow grades (target traffic) and its shadow grades of queries outside every target
cell, told apart from the old version by the adapter's sha256. A Wilson interval below the
gate's baseline rolls it back; above it, the share doubles up to `cap`, and `stable_slots`
consecutive better slots at the cap promote it; anything else holds the share. So each
decision is a function of the log, whatever the interleaving of the grader's and the
gateway's topics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from agents.cycles import Closure
from events.control import (
    CanaryStarted,
    GateStats,
    Promoted,
    RolledBack,
    SleepStarted,
    TrafficShifted,
    TrainingCompleted,
    TrainingFailed,
)
from events.envelope import Payload
from events.serving import AdapterRef, CycleGraded, QueryReceived, ResponseGraded
from events.vectors import decode_vector
from runtime.policy import AnyEnvelope, Emit, Policy

#: Smallest target radius a canary gets (CanaryStarted.radius must be positive).
MIN_RADIUS = 1e-3


@dataclass(frozen=True)
class CanaryConfig:
    initial_share: float = 0.02
    cap: float = 0.5
    stable_slots: int = 2
    delta: float = 0.05
    min_gain: float = 0.1
    z: float = 1.96
    min_gate_target: int = 5  # fewest held-out target queries the offline gate accepts


@dataclass(frozen=True)
class Sleep:
    """What a SleepStarted tells the judge about its episode."""

    model_id: str
    base_version: int
    centroids: tuple[str, ...]  # encoded vectors: arrays inside frozen state break ==
    radius: float


class Grade(NamedTuple):
    """A non-final grade of an answer some adapter gave."""

    query_id: str
    model_id: str
    success: bool
    shadow: bool
    adapter: str


Tally = tuple[int, int]  # (trials, successes)


@dataclass(frozen=True)
class Canary:
    """A version on trial and its cumulative live evidence."""

    envelope_id: str
    model_id: str
    version: int
    base_version: int
    adapter: AdapterRef
    centroids: tuple[str, ...]
    radius: float
    target_before: float
    outside_before: float
    first: int  # the first cycle it serves (and is judged on)
    share: float
    stable: int = 0  # consecutive better slots at the cap
    slot: int = 0  # slots judged so far
    target: Tally = (0, 0)
    outside: Tally = (0, 0)


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class State:
    sleeps: MappingProxyType[str, Sleep] = field(default_factory=_empty)
    pending: MappingProxyType[str, TrainingCompleted] = field(default_factory=_empty)
    canaries: MappingProxyType[str, Canary] = field(default_factory=_empty)
    closure: Closure = field(default_factory=Closure)
    # evidence of open cycles (> closure.through) only: memory is bounded by cycles in flight
    grades: MappingProxyType[int, tuple[Grade, ...]] = field(default_factory=_empty)
    queries: MappingProxyType[int, MappingProxyType[str, str]] = field(default_factory=_empty)


def wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a success rate (trials ≥ 1)."""
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _r(x: float) -> float:
    return round(x, 6)


def _with(m: Mapping[Any, Any], key: Any, value: Any) -> MappingProxyType[Any, Any]:
    return MappingProxyType({**m, key: value})


def _without(m: Mapping[Any, Any], key: Any) -> MappingProxyType[Any, Any]:
    return MappingProxyType({k: v for k, v in m.items() if k != key})


def _emit(data: Payload, model_id: str, cycle: int, key: str) -> Emit:
    return Emit(data, subject=model_id, correlationid=f"cycle-{cycle}", key=key)


# -- offline gate ------------------------------------------------------------------------


def gate_failure(cfg: CanaryConfig, gate: GateStats | None) -> str | None:
    """Why the offline gate refuses a version, or None when it passes."""
    if gate is None:
        return "offline gate: no held-out measurement"
    # rounded so that a boundary case (0.7 - 0.6 against 0.1) is decided as written
    gain = _r(gate.target_after - gate.target_before)
    change = _r(gate.outside_after - gate.outside_before)
    numbers = (f"target {gate.target_before:.3f}->{gate.target_after:.3f} "
               f"(gain {gain:+.3f}, need {cfg.min_gain:.3f}, n={gate.n_target}), outside "
               f"{gate.outside_before:.3f}->{gate.outside_after:.3f} "
               f"(allowed drop {cfg.delta:.3f}, n={gate.n_outside})")
    if gate.n_target < cfg.min_gate_target:
        return f"offline gate: too few held-out target queries (< {cfg.min_gate_target}); " \
               + numbers
    if gain < cfg.min_gain or change < -cfg.delta:
        return f"offline gate: {numbers}"
    return None


def _gate(cfg: CanaryConfig, state: State, sleep: Sleep, done: TrainingCompleted
          ) -> tuple[list[Emit], State]:
    """The offline gate's verdict on one episode; the episode is then forgotten."""
    eid = done.envelope_id
    state = replace(state, sleeps=_without(state.sleeps, eid),
                    pending=_without(state.pending, eid))
    key = f"canary|{eid}|start"
    gate = done.gate
    why = gate_failure(cfg, gate) if done.adapters else "offline gate: no adapter"
    if why is not None or gate is None:
        back = RolledBack(envelope_id=eid, model_id=sleep.model_id, version=done.version,
                          cycle=done.cycle, restored_version=sleep.base_version,
                          reason=why or "offline gate")
        return [_emit(back, sleep.model_id, done.cycle, key)], state
    adapter = done.adapters[0]
    started = CanaryStarted(
        envelope_id=eid, model_id=sleep.model_id, version=done.version, cycle=done.cycle,
        share=_r(cfg.initial_share), adapter=adapter, target_centroids=list(sleep.centroids),
        radius=sleep.radius, gate_target_delta=_r(gate.target_after - gate.target_before),
        gate_outside_delta=_r(gate.outside_after - gate.outside_before))
    # It serves from the next cycle; a cycle already complete here had no canary traffic
    # (lockstep opens d+1 only after this verdict), so none is judged for it.
    canary = Canary(
        envelope_id=eid, model_id=sleep.model_id, version=done.version,
        base_version=sleep.base_version, adapter=adapter, centroids=sleep.centroids,
        radius=sleep.radius, target_before=gate.target_before,
        outside_before=gate.outside_before,
        first=max(done.cycle, state.closure.through) + 1, share=_r(cfg.initial_share))
    state = replace(state, canaries=_with(state.canaries, eid, canary))
    return [_emit(started, sleep.model_id, done.cycle, key)], state


def _sleep_of(data: SleepStarted) -> Sleep:
    cells = data.target_cells
    radius = max([c.radius for c in cells], default=0.0)
    return Sleep(data.model_id, data.base_version, tuple(c.centroid for c in cells),
                 max(radius, MIN_RADIUS))


# -- live slots --------------------------------------------------------------------------


def _outside(canary: Canary, embedding: str | None) -> bool:
    """Does a query lie farther than the radius from every target centroid?"""
    if not embedding:
        return False  # no embedding: its place is unknown, so it is no evidence
    if not canary.centroids:
        return True
    x = decode_vector(embedding)
    cents = np.vstack([decode_vector(c) for c in canary.centroids])
    return bool(np.linalg.norm(cents - x, axis=1).min() > canary.radius)


def absorb(canary: Canary, grades: tuple[Grade, ...], vectors: Mapping[str, str]) -> Canary:
    """Add one completed cycle's grades of the canary's adapter to its evidence."""
    (tn, ts), (on, os_) = canary.target, canary.outside
    for g in grades:
        if g.model_id != canary.model_id or g.adapter != canary.adapter.sha256:
            continue
        if not g.shadow:
            tn, ts = tn + 1, ts + g.success
        elif _outside(canary, vectors.get(g.query_id)):
            on, os_ = on + 1, os_ + g.success
    return replace(canary, target=(tn, ts), outside=(on, os_))


def judge(cfg: CanaryConfig, c: Canary, cycle: int) -> tuple[Emit, Canary | None]:
    """One slot's verdict on a canary's evidence so far; None: it is no longer on trial."""
    (tn, ts), (on, os_) = c.target, c.outside
    key = f"canary|{c.envelope_id}|{cycle}"
    t_lo, t_hi = wilson(ts, tn, cfg.z) if tn else (0.0, 1.0)
    o_hi = wilson(os_, on, cfg.z)[1] if on else 1.0
    worse = []
    if tn and t_hi < c.target_before:
        worse.append(f"target {ts}/{tn} (Wilson upper {t_hi:.3f} < before "
                     f"{c.target_before:.3f})")
    if on and o_hi < c.outside_before - cfg.delta:
        worse.append(f"outside {os_}/{on} (Wilson upper {o_hi:.3f} < before "
                     f"{c.outside_before:.3f} - delta {cfg.delta:.3f})")
    if worse:
        back = RolledBack(envelope_id=c.envelope_id, model_id=c.model_id, version=c.version,
                          cycle=cycle, restored_version=c.base_version,
                          reason=f"live slot {c.slot}: " + "; ".join(worse))
        return _emit(back, c.model_id, cycle, key), None
    better = bool(tn) and t_lo > c.target_before
    share, stable = c.share, 0
    if better and c.share < cfg.cap:
        share = _r(min(2 * c.share, cfg.cap))
    elif better:
        stable = c.stable + 1
        if stable >= cfg.stable_slots:
            done = Promoted(envelope_id=c.envelope_id, model_id=c.model_id, version=c.version,
                            cycle=cycle, adapters=[c.adapter])
            return _emit(done, c.model_id, cycle, key), None
    shift = TrafficShifted(
        envelope_id=c.envelope_id, model_id=c.model_id, version=c.version, cycle=cycle,
        slot=c.slot, share=share,
        target_delta=_r(ts / tn - c.target_before) if tn else 0.0,
        outside_delta=_r(os_ / on - c.outside_before) if on else 0.0,
        target_trials=tn, target_successes=ts, outside_trials=on, outside_successes=os_)
    return _emit(shift, c.model_id, cycle, key), replace(c, share=share, stable=stable,
                                                         slot=c.slot + 1)


def _closed(cfg: CanaryConfig, state: State, closure: Closure) -> tuple[list[Emit], State]:
    """Judge every active canary on each cycle `closure` completes, in order, then forget
    the cycle's evidence."""
    emits: list[Emit] = []
    for cycle in range(state.closure.through + 1, closure.through + 1):
        grades = state.grades.get(cycle, ())
        vectors = state.queries.get(cycle, MappingProxyType({}))
        canaries = dict(state.canaries)
        for eid in sorted(canaries):
            if canaries[eid].first > cycle:
                continue
            emit, after = judge(cfg, absorb(canaries[eid], grades, vectors), cycle)
            emits.append(emit)
            if after is None:
                del canaries[eid]
            else:
                canaries[eid] = after
        state = replace(state, canaries=MappingProxyType(canaries),
                        grades=_without(state.grades, cycle),
                        queries=_without(state.queries, cycle))
    return emits, replace(state, closure=closure)


# -- the fold ----------------------------------------------------------------------------


def step(cfg: CanaryConfig, state: State, event: AnyEnvelope) -> tuple[list[Emit], State]:
    data = event.data
    if isinstance(data, QueryReceived):
        if data.cycle > state.closure.through and data.embedding:
            state = replace(state, queries=_with(state.queries, data.cycle, MappingProxyType(
                {**state.queries.get(data.cycle, {}), data.query_id: data.embedding})))
        return _closed(cfg, state, state.closure.with_query(data.cycle))
    if isinstance(data, ResponseGraded):
        # only an adapter's answers can be a canary's: the base weights' grades are dropped
        if not data.final and data.adapter is not None and data.cycle > state.closure.through:
            grade = Grade(data.query_id, data.model_id, data.success, data.shadow, data.adapter)
            state = replace(state, grades=_with(state.grades, data.cycle,
                                                (*state.grades.get(data.cycle, ()), grade)))
        return _closed(cfg, state, state.closure.with_grade(data.cycle))
    if isinstance(data, CycleGraded):
        return _closed(cfg, state, state.closure.with_closed(data.cycle, data.grades,
                                                             data.queries))
    if isinstance(data, SleepStarted):
        sleep = _sleep_of(data)
        done = state.pending.get(data.envelope_id)
        if done is not None:
            return _gate(cfg, state, sleep, done)
        return [], replace(state, sleeps=_with(state.sleeps, data.envelope_id, sleep))
    if isinstance(data, TrainingCompleted):
        if data.envelope_id in state.canaries:
            return [], state  # judged already (a redelivery)
        sleep_ = state.sleeps.get(data.envelope_id)
        if sleep_ is not None:
            return _gate(cfg, state, sleep_, data)
        return [], replace(state, pending=_with(state.pending, data.envelope_id, data))
    if isinstance(data, TrainingFailed):
        return [], replace(state, sleeps=_without(state.sleeps, data.envelope_id),
                           pending=_without(state.pending, data.envelope_id))
    return [], state


def make_policy(cfg: CanaryConfig = CanaryConfig()) -> Policy[State]:
    return Policy.stepped(State(), lambda s, e: step(cfg, s, e))
