"""Selector: route each query to M* = argmin w_d·d_beh(x, M) + w_c·C(M) (eq. 4).

Candidates are the entry-tier members that are WORKING (never a SLEEPING one); with
probability ε a uniformly random candidate is explored instead, drawn from a generator
seeded by (seed, query id) so the choice is a function of the log. Shadow queries are also
routed to every other entry member and to the next tier, so cover and solvable_up are
measured where nothing was escalated. Prototypes are built here from graded successes.

Determinism and no label leak: a query of cycle c is routed with the prototypes of the
successes of cycles < c only, absorbed in a fixed order (cycle, query, model) once the grader
has closed each cycle (agents.cycles); a query that arrives before the previous cycle is
closed waits. So the decision depends neither on how the grader's and the gateway's topics
interleave here nor on any grade of its own cycle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import numpy as np

from agents.cohort import Cohort
from agents.cycles import Closure
from agents.selector.prototypes import Bank, distances
from events.control import (
    CanaryStarted,
    Promoted,
    RolledBack,
    SleepStarted,
    TrafficShifted,
    TrainingCompleted,
    TrainingFailed,
)
from events.serving import CycleGraded, QueryReceived, QueryRouted, ResponseGraded
from events.vectors import decode_vector
from runtime.policy import AnyEnvelope, Emit, Policy

Status = Literal["WORKING", "SLEEPING"]


@dataclass(frozen=True)
class SelectorConfig:
    w_d: float = 1.0
    w_c: float = 0.3
    epsilon: float = 0.05
    k_max: int = 10
    decay: float = 0.99
    radius: float = 0.6  # a success farther than this from every centroid founds a new one
    prior_distance: float = 1.0  # d_beh of a member with no prototype yet
    seed: int = 0


class Success(NamedTuple):
    """A graded success: where member `model_id` has been good (a prototype update)."""

    cycle: int
    query_id: str
    model_id: str


@dataclass(frozen=True)
class Canary:
    """A new version on trial: `share` of the queries in its target cells go to it."""

    share: float
    centroids: tuple[str, ...]  # encoded vectors: arrays inside frozen state break ==
    radius: float


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class State:
    banks: MappingProxyType[str, Bank] = field(default_factory=_empty)
    closure: Closure = field(default_factory=Closure)  # banks hold cycles ≤ closure.through
    pending: MappingProxyType[int, tuple[Success, ...]] = field(default_factory=_empty)
    recent: MappingProxyType[int, MappingProxyType[str, str]] = field(default_factory=_empty)
    waiting: MappingProxyType[int, tuple[QueryReceived, ...]] = field(default_factory=_empty)
    status: MappingProxyType[str, Status] = field(default_factory=_empty)
    canaries: MappingProxyType[str, Canary] = field(default_factory=_empty)


def absorb(state: State, cycle: int, cfg: SelectorConfig) -> State:
    """Fold a completed cycle's successes into the banks, in a fixed order, and forget the
    cycle's embeddings (memory is bounded by cycles in flight)."""
    banks = dict(state.banks)
    vectors = state.recent.get(cycle, MappingProxyType({}))
    for _, query_id, model_id in sorted(state.pending.get(cycle, ())):
        vec = vectors.get(query_id)
        if vec is not None:
            bank = banks.get(model_id, Bank.empty())
            banks[model_id] = bank.absorb(decode_vector(vec), cfg.k_max, cfg.decay, cfg.radius)
    drop = lambda m: MappingProxyType({c: v for c, v in m.items() if c != cycle})  # noqa: E731
    return replace(state, banks=MappingProxyType(banks), pending=drop(state.pending),
                   recent=drop(state.recent))


def _draw(seed: int, query_id: str) -> float:
    digest = hashlib.sha256(f"{seed}|{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(cohort: Cohort, cfg: SelectorConfig, state: State, q: QueryReceived) -> QueryRouted:
    # `state` holds the evidence of every cycle before q's (the caller waited for it)
    """The routing decision for one query, with the numbers behind it."""
    entry = [m for m in cohort.tier(0) if state.status.get(m.model_id, "WORKING") == "WORKING"]
    if not entry:  # the envelope broker never sleeps a whole cohort; be safe anyway
        entry = list(cohort.tier(0))
    ids = [m.model_id for m in entry]
    costs = np.array([m.cost for m in entry])
    x = decode_vector(q.embedding)
    d = distances(dict(state.banks), ids, x, cfg.prior_distance)
    score = cfg.w_d * d + cfg.w_c * costs
    explored = _draw(cfg.seed, q.query_id) < cfg.epsilon
    if explored:
        pick = int(_draw(cfg.seed + 1, q.query_id) * len(entry))
    else:
        pick = min(range(len(entry)), key=lambda i: (score[i], ids[i]))
    canary = _canary_for(state, ids, x, _draw(cfg.seed + 2, q.query_id))
    return QueryRouted(
        query_id=q.query_id, cycle=q.cycle, model_id=canary or ids[pick], tier=0, text=q.text,
        distances={m: round(float(v), 6) for m, v in zip(ids, d, strict=True)},
        costs={m: float(c) for m, c in zip(ids, costs, strict=True)},
        explored=explored and canary is None, canary=canary is not None,
    )


def _canary_for(state: State, ids: list[str], x: np.ndarray, draw: float) -> str | None:
    """The canary member whose target cells hold x and whose share the draw falls in."""
    for model_id in sorted(state.canaries):
        c = state.canaries[model_id]
        if model_id not in ids or not c.centroids:
            continue
        cents = np.vstack([decode_vector(v) for v in c.centroids])
        if np.linalg.norm(cents - x, axis=1).min() <= c.radius and draw < c.share:
            return model_id
    return None


def routes(cohort: Cohort, cfg: SelectorConfig, state: State, q: QueryReceived) -> list[Emit]:
    """The routing of one query, plus its shadow fan-out; ids keyed by what they are."""
    routed = route(cohort, cfg, state, q)
    corr = f"cycle-{q.cycle}"
    emits = [Emit(routed, subject=q.query_id, correlationid=corr,
                  key=f"route|{q.query_id}")]
    if q.shadow:
        others = [m for m in (*cohort.tier(0), *cohort.tier(1)) if m.model_id != routed.model_id]
        emits += [Emit(QueryRouted(query_id=q.query_id, cycle=q.cycle, model_id=m.model_id,
                                   tier=m.tier, text=q.text, shadow=True),
                       subject=q.query_id, correlationid=corr,
                       key=f"shadow|{q.query_id}|{m.model_id}")
                  for m in others]
    return emits


def _closed(cohort: Cohort, cfg: SelectorConfig, state: State, closure: Closure
            ) -> tuple[list[Emit], State]:
    """Absorb the cycles `closure` completes, then route the queries that waited for them."""
    emits: list[Emit] = []
    for cycle in range(state.closure.through + 1, closure.through + 1):
        state = absorb(state, cycle, cfg)
        for q in state.waiting.get(cycle + 1, ()):
            emits += routes(cohort, cfg, state, q)
        state = replace(state, waiting=MappingProxyType(
            {c: v for c, v in state.waiting.items() if c != cycle + 1}))
    return emits, replace(state, closure=closure)


def step(cohort: Cohort, cfg: SelectorConfig, state: State, event: AnyEnvelope
         ) -> tuple[list[Emit], State]:
    data = event.data
    if isinstance(data, QueryReceived):
        if data.cycle <= state.closure.through:
            return [], state  # a query of a closed cycle (a replayed stray): nothing to do
        recent = dict(state.recent)
        recent[data.cycle] = MappingProxyType(
            {**recent.get(data.cycle, {}), data.query_id: data.embedding})
        state = replace(state, recent=MappingProxyType(recent))
        if state.closure.ready(data.cycle):
            emits = routes(cohort, cfg, state, data)
        else:
            emits = []
            waiting = {**state.waiting,
                       data.cycle: (*state.waiting.get(data.cycle, ()), data)}
            state = replace(state, waiting=MappingProxyType(waiting))
        more, state = _closed(cohort, cfg, state, state.closure.with_query(data.cycle))
        return emits + more, state
    if isinstance(data, ResponseGraded):
        if data.success and not data.final and data.cycle > state.closure.through:
            success = Success(data.cycle, data.query_id, data.model_id)
            pending = {**state.pending,
                       data.cycle: (*state.pending.get(data.cycle, ()), success)}
            state = replace(state, pending=MappingProxyType(pending))
        return _closed(cohort, cfg, state, state.closure.with_grade(data.cycle))
    if isinstance(data, CycleGraded):
        return _closed(cohort, cfg, state, state.closure.with_closed(
            data.cycle, data.grades, data.queries))
    return [], control(state, data)


def control(state: State, data: object) -> State:
    """Member states and canary shares from the sleep agents' events."""
    if isinstance(data, CanaryStarted):
        canary = Canary(data.share, tuple(data.target_centroids), data.radius)
        state = replace(state, canaries=MappingProxyType(
            {**state.canaries, data.model_id: canary}))
        return _set(state, data.model_id, "WORKING")
    if isinstance(data, TrafficShifted) and data.model_id in state.canaries:
        canary = replace(state.canaries[data.model_id], share=data.share)
        return replace(state, canaries=MappingProxyType(
            {**state.canaries, data.model_id: canary}))
    if isinstance(data, Promoted | RolledBack):
        canaries = {k: v for k, v in state.canaries.items() if k != data.model_id}
        state = replace(state, canaries=MappingProxyType(canaries))
    if isinstance(data, SleepStarted):
        return _set(state, data.model_id, "SLEEPING")
    if isinstance(data, TrainingCompleted | TrainingFailed | Promoted | RolledBack):
        return _set(state, data.model_id, "WORKING")
    return state


def make_policy(cohort: Cohort, cfg: SelectorConfig = SelectorConfig()) -> Policy[State]:
    return Policy.stepped(State(), lambda s, e: step(cohort, cfg, s, e))


def _set(state: State, model_id: str, status: Status) -> State:
    return replace(state, status=MappingProxyType({**state.status, model_id: status}))
