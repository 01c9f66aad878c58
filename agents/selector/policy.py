"""Selector: route each query to M* = argmin w_d·d_beh(x, M) + w_c·C(M) (eq. 4).

Candidates are the entry-tier members that are WORKING (never a SLEEPING one); with
probability ε a uniformly random candidate is explored instead, drawn from a generator
seeded by (seed, query id) so the choice is a function of the log. Shadow queries are also
routed to every other entry member and to the next tier, so cover and solvable_up are
measured where nothing was escalated. Prototypes are built here from graded successes.

Determinism: a query of cycle c is routed with the prototypes of the successes of cycles
< c, absorbed in a fixed order (cycle, query, model), so the decision does not depend on how
the grader's and the gateway's topics interleave at this consumer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

import numpy as np

from agents.cohort import Cohort
from agents.runtime.policy import AnyEnvelope, Emit, Policy
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
from events.serving import QueryReceived, QueryRouted, ResponseGraded
from events.vectors import decode_vector

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
    window: int = 5000  # query embeddings kept for prototype updates
    seed: int = 0


Success = tuple[int, str, str]  # (cycle, query id, model id)


@dataclass(frozen=True)
class Canary:
    """A new version on trial: `share` of the queries in its target cells go to it."""

    share: float
    centroids: np.ndarray
    radius: float


@dataclass(frozen=True)
class State:
    banks: MappingProxyType[str, Bank] = field(default_factory=lambda: MappingProxyType({}))
    cycle: int = 0  # the banks hold every success of cycles < cycle
    pending: tuple[Success, ...] = ()  # successes not yet absorbed
    status: MappingProxyType[str, Status] = field(default_factory=lambda: MappingProxyType({}))
    recent: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))
    canaries: MappingProxyType[str, Canary] = field(default_factory=lambda: MappingProxyType({}))


def advance(state: State, cycle: int, cfg: SelectorConfig) -> State:
    """Absorb, in a fixed order, the pending successes of cycles before `cycle`."""
    if cycle <= state.cycle:
        return state
    due = sorted(p for p in state.pending if p[0] < cycle)
    if not due:
        return replace(state, cycle=cycle)
    banks = dict(state.banks)
    for _, query_id, model_id in due:
        vec = state.recent.get(query_id)
        if vec is not None:
            bank = banks.get(model_id, Bank.empty())
            banks[model_id] = bank.absorb(decode_vector(vec), cfg.k_max, cfg.decay, cfg.radius)
    return replace(state, banks=MappingProxyType(banks), cycle=cycle,
                   pending=tuple(p for p in state.pending if p[0] >= cycle))


def _draw(seed: int, query_id: str) -> float:
    digest = hashlib.sha256(f"{seed}|{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(cohort: Cohort, cfg: SelectorConfig, state: State, q: QueryReceived) -> QueryRouted:
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
        if model_id not in ids or not len(c.centroids):
            continue
        if np.linalg.norm(c.centroids - x, axis=1).min() <= c.radius and draw < c.share:
            return model_id
    return None


def make_policy(cohort: Cohort, cfg: SelectorConfig = SelectorConfig()) -> Policy[State]:
    def decide(state: State, event: AnyEnvelope) -> list[Emit]:
        q = event.data
        if not isinstance(q, QueryReceived):
            return []
        routed = route(cohort, cfg, advance(state, q.cycle, cfg), q)
        emits = [Emit(routed, subject=q.query_id, correlationid=f"cycle-{q.cycle}")]
        if q.shadow:
            others = [m for m in (*cohort.tier(0), *cohort.tier(1))
                      if m.model_id != routed.model_id]
            emits += [Emit(QueryRouted(query_id=q.query_id, cycle=q.cycle, model_id=m.model_id,
                                       tier=m.tier, text=q.text, shadow=True),
                           subject=q.query_id, correlationid=f"cycle-{q.cycle}")
                      for m in others]
        return emits

    def evolve(state: State, event: AnyEnvelope) -> State:
        data = event.data
        if isinstance(data, QueryReceived):
            state = advance(state, data.cycle, cfg)
            recent = dict(state.recent)
            recent[data.query_id] = data.embedding
            while len(recent) > cfg.window:  # oldest first: dicts keep insertion order
                del recent[next(iter(recent))]
            return replace(state, recent=MappingProxyType(recent))
        if isinstance(data, ResponseGraded) and data.success and not data.final:
            success = (data.cycle, data.query_id, data.model_id)
            return replace(state, pending=(*state.pending, success))
        if isinstance(data, CanaryStarted):
            cents = np.vstack([decode_vector(c) for c in data.target_centroids]) \
                if data.target_centroids else np.zeros((0, 384), dtype=np.float32)
            canary = Canary(data.share, cents, data.radius)
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

    return Policy(initial=State(), decide=decide, evolve=evolve)


def _set(state: State, model_id: str, status: Status) -> State:
    return replace(state, status=MappingProxyType({**state.status, model_id: status}))
