"""Grader: Q for every answer, the served answer's grade once per query, and the closing
count of each cycle.

Benchmark queries carry a `TaskRef`, so the grader rebuilds the task and scores with the
generator's own scorer (the reference answer is rebuilt here, never carried to the routing
agents). Queries without one are graded by agreement with the highest-tier answer to the
same query, once the query is settled, so the grade never depends on which answer arrived
first; a top-tier answer with nothing above it gets no grade. Answers, queries and verdicts
arrive on three topics in any order: each is held until what it needs has arrived.

A query is settled when its verdict chain has ended (an `Accepted`), its served answer is
in, and, for a shadow query, every peer's shadow answer too. When every query of a cycle is
settled the grader emits `CycleGraded` with the number of grades of the cycle; later
answers of a closed cycle get no grade, so the count stays exact. Queries of closed cycles
are forgotten (memory is bounded by cycles in flight, not by the log).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType

from events.serving import (
    Accepted,
    CycleGraded,
    CycleOpened,
    QueryReceived,
    ResponseGenerated,
    ResponseGraded,
)
from modelcore.grading import Grade, grade_agreement, grade_reference
from modelcore.tasks import make_task
from runtime.policy import AnyEnvelope, Emit, Policy


@dataclass(frozen=True)
class Query:
    """What is known of one query so far."""

    cycle: int
    received: QueryReceived | None = None
    answers: tuple[ResponseGenerated, ...] = ()
    accepted: Accepted | None = None

    def served_by(self, model_id: str) -> ResponseGenerated | None:
        """The served (not shadow) answer of a member; it may also have answered as shadow."""
        return next((a for a in self.answers if a.model_id == model_id and not a.shadow), None)

    def settled(self, shadow_peers: int) -> bool:
        if self.received is None or self.accepted is None:
            return False
        if self.served_by(self.accepted.model_id) is None:
            return False
        shadows = {a.model_id for a in self.answers if a.shadow}
        return not self.received.shadow or len(shadows) >= shadow_peers


@dataclass(frozen=True)
class Tally:
    """One open cycle: its size (once announced), queries settled and grades emitted."""

    size: int | None = None
    settled: int = 0
    grades: int = 0


@dataclass(frozen=True)
class State:
    queries: MappingProxyType[str, Query] = field(default_factory=lambda: MappingProxyType({}))
    cycles: MappingProxyType[int, Tally] = field(default_factory=lambda: MappingProxyType({}))
    closed: int = -1  # every cycle up to this one is closed


@dataclass(frozen=True)
class GraderConfig:
    #: Shadow answers a shadow query gets: every entry and next-tier member but the routed.
    shadow_peers: int = 0


def grade(q: QueryReceived, r: ResponseGenerated, known: Query) -> Grade | None:
    if q.task is not None:
        t = q.task
        return grade_reference(make_task(t.family, t.level, t.seed, t.index), r.answer)
    uppers = [a for a in known.answers if a.tier > r.tier]
    if not uppers:
        return None
    top = max(uppers, key=lambda a: (a.tier, a.model_id, a.shadow))
    return grade_agreement(r.answer, top.answer)


def graded(q: QueryReceived, r: ResponseGenerated, g: Grade, final: bool) -> Emit:
    return Emit(ResponseGraded(
        query_id=q.query_id, cycle=q.cycle, model_id=r.model_id, tier=r.tier,
        quality=g.quality, success=g.success, method=g.method, final=final, shadow=r.shadow,
        confidence=r.confidence, cost_norm=r.cost_norm, adapter=r.adapter,
    ), subject=q.query_id, correlationid=f"cycle-{q.cycle}",
        key=f"graded|{q.query_id}|{r.model_id}|{final}|{r.shadow}")


def _grades(known: Query) -> dict[tuple[str, bool, bool], Emit]:
    """Every grade the known events of one query allow, keyed by (model, final, shadow)."""
    q = known.received
    if q is None:
        return {}
    out: dict[tuple[str, bool, bool], Emit] = {}
    for r in known.answers:
        g = grade(q, r, known)
        if g is not None:
            out[(r.model_id, False, r.shadow)] = graded(q, r, g, final=False)
    served = known.served_by(known.accepted.model_id) if known.accepted else None
    if served is not None:
        g = grade(q, served, known)
        if g is not None:
            out[(served.model_id, True, False)] = graded(q, served, g, final=True)
    return out


def _cycle_of(event: AnyEnvelope) -> int | None:
    data = event.data
    if isinstance(data, QueryReceived | ResponseGenerated | Accepted | CycleOpened):
        return data.cycle
    return None


def step(cfg: GraderConfig, state: State, event: AnyEnvelope) -> tuple[list[Emit], State]:
    """The grades (and cycle closings) an event allows, and the state after it."""
    data, cycle = event.data, _cycle_of(event)
    if cycle is None or cycle <= state.closed:
        return [], state  # not ours, or a late answer of a closed cycle: no grade
    tally = state.cycles.get(cycle, Tally())
    emits: list[Emit] = []
    queries = dict(state.queries)
    if isinstance(data, CycleOpened):
        tally = replace(tally, size=data.queries)
    else:
        qid = data.query_id
        before = queries.get(qid, Query(cycle))
        if isinstance(data, QueryReceived):
            known = replace(before, received=data)
        elif isinstance(data, ResponseGenerated):
            known = replace(before, answers=(*before.answers, data))
        else:
            known = replace(before, accepted=data)
        settles = known.settled(cfg.shadow_peers) and not before.settled(cfg.shadow_peers)
        if known.received is not None and known.received.task is not None:
            was = _grades(before)
            emits = [e for key, e in _grades(known).items() if key not in was]
        elif settles:  # agreement grades once, when every answer is in: order-free
            emits = list(_grades(known).values())
        tally = replace(tally, grades=tally.grades + len(emits),
                        settled=tally.settled + settles)
        queries[qid] = known
    cycles = {**state.cycles, cycle: tally}
    closed = state.closed
    while (t := cycles.get(closed + 1)) is not None and t.size is not None \
            and t.settled >= t.size:
        done = closed + 1
        emits.append(Emit(CycleGraded(cycle=done, queries=t.size, grades=t.grades),
                          subject=f"cycle-{done}", correlationid=f"cycle-{done}",
                          key=f"cycle-graded|{done}"))
        closed = done
        del cycles[done]
    if closed != state.closed:
        queries = {k: v for k, v in queries.items() if v.cycle > closed}
    return emits, State(MappingProxyType(queries), MappingProxyType(cycles), closed)


def make_policy(cfg: GraderConfig = GraderConfig()) -> Policy[State]:
    return Policy.stepped(State(), lambda s, e: step(cfg, s, e))


POLICY: Policy[State] = make_policy()
