"""Grader: Q for every answer, and the served answer's grade once per query.

Benchmark queries carry a `TaskRef`, so the grader rebuilds the task and scores with the
generator's own scorer. Queries without one are graded by agreement with the highest-tier
answer to the same query (a shadow or escalated answer); a top-tier answer with nothing above
it gets no grade. Answers, queries and verdicts arrive on three topics in any order: each is
held until what it needs has arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType

from agents.runtime.policy import AnyEnvelope, Emit, Policy
from events.serving import Accepted, QueryReceived, ResponseGenerated, ResponseGraded
from modelcore.grading import Grade, grade_agreement, grade_reference
from modelcore.tasks import make_task

WINDOW = 4000  # queries remembered; far more than are ever in flight at once


@dataclass(frozen=True)
class Query:
    """What is known of one query so far."""

    received: QueryReceived | None = None
    answers: tuple[ResponseGenerated, ...] = ()
    accepted: Accepted | None = None

    def served_by(self, model_id: str) -> ResponseGenerated | None:
        """The served (not shadow) answer of a member; it may also have answered as shadow."""
        return next((a for a in self.answers if a.model_id == model_id and not a.shadow), None)


@dataclass(frozen=True)
class State:
    queries: MappingProxyType[str, Query] = field(default_factory=lambda: MappingProxyType({}))


def grade(q: QueryReceived, r: ResponseGenerated, known: Query) -> Grade | None:
    if q.task is not None:
        t = q.task
        return grade_reference(make_task(t.family, t.level, t.seed, t.index), r.answer)
    uppers = [a for a in known.answers if a.tier > r.tier]
    if not uppers:
        return None
    top = max(uppers, key=lambda a: (a.tier, a.model_id))
    return grade_agreement(r.answer, top.answer)


def graded(q: QueryReceived, r: ResponseGenerated, g: Grade, final: bool) -> Emit:
    return Emit(ResponseGraded(
        query_id=q.query_id, cycle=q.cycle, model_id=r.model_id, tier=r.tier,
        quality=g.quality, success=g.success, method=g.method, final=final, shadow=r.shadow,
        confidence=r.confidence, cost_norm=r.cost_norm,
    ), subject=q.query_id, correlationid=f"cycle-{q.cycle}",
        key=f"graded|{q.query_id}|{r.model_id}|{final}|{r.shadow}")


def _with(state: State, event: AnyEnvelope) -> State:
    data = event.data
    qid = _query_of(event)
    if qid is None:
        return state
    known = state.queries.get(qid, Query())
    if isinstance(data, QueryReceived):
        known = replace(known, received=data)
    elif isinstance(data, ResponseGenerated):
        known = replace(known, answers=(*known.answers, data))
    elif isinstance(data, Accepted):
        known = replace(known, accepted=data)
    queries = dict(state.queries)
    queries.pop(qid, None)
    queries[qid] = known  # most recently touched last
    while len(queries) > WINDOW:
        del queries[next(iter(queries))]
    return replace(state, queries=MappingProxyType(queries))


def _query_of(event: AnyEnvelope) -> str | None:
    data = event.data
    if isinstance(data, QueryReceived | ResponseGenerated | Accepted):
        return data.query_id
    return None


def decide(state: State, event: AnyEnvelope) -> list[Emit]:
    qid = _query_of(event)
    if qid is None:
        return []
    before = _grades(state, qid)
    after = _grades(_with(state, event), qid)
    return [e for key, e in after.items() if key not in before]


def _grades(state: State, qid: str) -> dict[tuple[str, bool, bool], Emit]:
    """Every grade the known events of one query allow, keyed by (model, final, shadow)."""
    known = state.queries.get(qid)
    if known is None or known.received is None:
        return {}
    q = known.received
    out: dict[tuple[str, bool, bool], Emit] = {}
    if q.task is not None:  # without a reference only the served answer is graded
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


def evolve(state: State, event: AnyEnvelope) -> State:
    return _with(state, event)


POLICY: Policy[State] = Policy(initial=State(), decide=decide, evolve=evolve)
