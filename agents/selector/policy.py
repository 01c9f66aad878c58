"""Selector: route each query to M* = argmin w_d·d_beh(x, M) + w_c·C(M) (eq. 4).

Candidates are the entry-tier members that serve (never a SLEEPING one); with
probability ε a uniformly random candidate is explored instead, drawn from a generator
seeded by (seed, query id) so the choice is a function of the log. Shadow queries are also
routed to every other entry member and to the next tier, so cover and solvable_up are
measured where nothing was escalated. Prototypes are built here from graded successes.

Determinism and no label leak: a query of cycle c is routed with the prototypes of the
successes of cycles < c only, absorbed in a fixed order (cycle, query, model) once the grader
has closed each cycle (agents.cycles); a query that arrives before the previous cycle is
closed waits. With the sleep half running it also waits for the control phase of c-1
(`ControlPhaseCompleted`), whose member states, adapters and canary shares it is served
with. So the decision depends neither on how the topics interleave here nor on any grade of
its own cycle.
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
from events.control import CanaryView, ControlPhaseCompleted, MemberView
from events.serving import AdapterRef, CycleGraded, QueryReceived, QueryRouted, ResponseGraded
from events.vectors import decode_vector
from runtime.policy import AnyEnvelope, Emit, Policy


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
    controlled: bool = False  # the sleep half runs: wait for each cycle's control phase
    route: Literal["prototypes", "cheapest", "top"] = "prototypes"  # baselines: see config


class Success(NamedTuple):
    """A graded success: where member `model_id` has been good (a prototype update)."""

    cycle: int
    query_id: str
    model_id: str


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class State:
    banks: MappingProxyType[str, Bank] = field(default_factory=_empty)
    closure: Closure = field(default_factory=Closure)  # banks hold cycles ≤ closure.through
    pending: MappingProxyType[int, tuple[Success, ...]] = field(default_factory=_empty)
    recent: MappingProxyType[int, MappingProxyType[str, str]] = field(default_factory=_empty)
    waiting: MappingProxyType[int, tuple[QueryReceived, ...]] = field(default_factory=_empty)
    #: Control phases by cycle: cycle c is served as the phase of c-1 left it.
    views: MappingProxyType[int, ControlPhaseCompleted] = field(default_factory=_empty)

    def view(self, cycle: int) -> ControlPhaseCompleted | None:
        return self.views.get(cycle - 1)


def ready(cfg: SelectorConfig, state: State, cycle: int) -> bool:
    """May queries of `cycle` be routed: evidence of every earlier cycle in, and (with the
    sleep half) the control phase before it."""
    return state.closure.ready(cycle) and (
        not cfg.controlled or cycle == 0 or cycle - 1 in state.views)


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


def _serving(view: ControlPhaseCompleted | None, model_id: str) -> MemberView:
    return view.members.get(model_id, MemberView()) if view else MemberView()


def route(cohort: Cohort, cfg: SelectorConfig, state: State, q: QueryReceived) -> QueryRouted:
    # `state` holds the evidence of every cycle before q's (the caller waited for it)
    """The routing decision for one query, with the numbers behind it."""
    view = state.view(q.cycle)
    entry = [m for m in cohort.tier(0) if _serving(view, m.model_id).state != "SLEEPING"]
    if not entry:  # the envelope broker never sleeps a whole cohort; be safe anyway
        entry = list(cohort.tier(0))
    ids = [m.model_id for m in entry]
    costs = np.array([m.cost for m in entry])
    x = decode_vector(q.embedding)
    d = distances(_with_proven_cells(state, view, ids), ids, x, cfg.prior_distance)
    score = cfg.w_d * d + cfg.w_c * costs
    explored = cfg.route == "prototypes" and _draw(cfg.seed, q.query_id) < cfg.epsilon
    if cfg.route == "top":
        top = cohort.cheapest(cohort.top_tier)
        return QueryRouted(query_id=q.query_id, cycle=q.cycle, model_id=top.model_id,
                           tier=top.tier, text=q.text, distances={}, costs={top.model_id: top.cost},
                           explored=False, canary=False, adapter=None)
    if cfg.route == "cheapest":
        pick = min(range(len(entry)), key=lambda i: (costs[i], ids[i]))
    elif explored:
        pick = int(_draw(cfg.seed + 1, q.query_id) * len(entry))
    else:
        pick = min(range(len(entry)), key=lambda i: (score[i], ids[i]))
    canary = _canary_for(view, ids, x, _draw(cfg.seed + 2, q.query_id))
    model_id = canary.model_id if canary else ids[pick]
    return QueryRouted(
        query_id=q.query_id, cycle=q.cycle, model_id=model_id, tier=0, text=q.text,
        distances={m: round(float(v), 6) for m, v in zip(ids, d, strict=True)},
        costs={m: float(c) for m, c in zip(ids, costs, strict=True)},
        explored=explored and canary is None, canary=canary is not None,
        adapter=canary.adapter if canary else _serving(view, model_id).adapter,
    )


def _with_proven_cells(state: State, view: ControlPhaseCompleted | None, ids: list[str]
                       ) -> dict[str, Bank]:
    """Each member's prototypes plus the cells its promoted version was proven on: a new
    version is routed its new cells before its own successes there could found prototypes."""
    banks = dict(state.banks)
    for m in ids:
        cells = _serving(view, m).good_at
        if cells:
            bank = banks.get(m, Bank.empty())
            extra = np.vstack([decode_vector(c) for c in cells]).astype(np.float32)
            banks[m] = Bank(np.vstack([bank.centroids, extra]), (*bank.counts, *[1] * len(cells)))
    return banks


def _canary_for(view: ControlPhaseCompleted | None, ids: list[str], x: np.ndarray,
                draw: float) -> CanaryView | None:
    """The canary whose target cells hold x and whose share the draw falls in."""
    for c in view.canaries if view else ():
        if c.model_id not in ids or not c.target_centroids:
            continue
        cents = np.vstack([decode_vector(v) for v in c.target_centroids])
        if np.linalg.norm(cents - x, axis=1).min() <= c.radius and draw < c.share:
            return c
    return None


def _shadow_adapter(view: ControlPhaseCompleted | None, model_id: str) -> AdapterRef | None:
    """A member on canary answers the shadow sample with its new version (the judge's
    evidence outside the target cells); others with what they serve."""
    for c in view.canaries if view else ():
        if c.model_id == model_id:
            return c.adapter
    return _serving(view, model_id).adapter


def routes(cohort: Cohort, cfg: SelectorConfig, state: State, q: QueryReceived) -> list[Emit]:
    """The routing of one query, plus its shadow fan-out; ids keyed by what they are."""
    routed = route(cohort, cfg, state, q)
    corr = f"cycle-{q.cycle}"
    emits = [Emit(routed, subject=q.query_id, correlationid=corr,
                  key=f"route|{q.query_id}")]
    if q.shadow:
        others = [m for m in (*cohort.tier(0), *cohort.tier(1)) if m.model_id != routed.model_id]
        view = state.view(q.cycle)
        emits += [Emit(QueryRouted(query_id=q.query_id, cycle=q.cycle, model_id=m.model_id,
                                   tier=m.tier, text=q.text, shadow=True,
                                   adapter=_shadow_adapter(view, m.model_id)),
                       subject=q.query_id, correlationid=corr,
                       key=f"shadow|{q.query_id}|{m.model_id}")
                  for m in others]
    return emits


def _release(cohort: Cohort, cfg: SelectorConfig, state: State) -> tuple[list[Emit], State]:
    """Route the queries of every cycle that became ready, in cycle order."""
    emits: list[Emit] = []
    for cycle in sorted(state.waiting):
        if not ready(cfg, state, cycle):
            break
        for q in state.waiting[cycle]:
            emits += routes(cohort, cfg, state, q)
        state = replace(state, waiting=MappingProxyType(
            {c: v for c, v in state.waiting.items() if c != cycle}))
    return emits, state


def _closed(cohort: Cohort, cfg: SelectorConfig, state: State, closure: Closure
            ) -> tuple[list[Emit], State]:
    """Absorb the cycles `closure` completes, then route the queries that waited for them."""
    for cycle in range(state.closure.through + 1, closure.through + 1):
        state = absorb(state, cycle, cfg)
    return _release(cohort, cfg, replace(state, closure=closure))


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
        if ready(cfg, state, data.cycle) and data.cycle not in state.waiting:
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
    if isinstance(data, ControlPhaseCompleted) and cfg.controlled:
        # keep the phases a waiting or future query may still be served with
        views = {c: v for c, v in state.views.items() if c >= state.closure.through - 1}
        state = replace(state, views=MappingProxyType({**views, data.cycle: data}))
        return _release(cohort, cfg, state)
    return [], state


def make_policy(cohort: Cohort, cfg: SelectorConfig = SelectorConfig()) -> Policy[State]:
    return Policy.stepped(State(), lambda s, e: step(cohort, cfg, s, e))
