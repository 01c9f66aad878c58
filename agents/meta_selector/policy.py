"""Meta-selector (Algorithm 1): ESCALATE iff calibrated conf < θ_crit and EVI > 0.

EVI(x) = Ê[Q_{n+1} - Q_n | cell(x)] - λ·(C_{n+1} - C_n). The expected gain is read from the
gap index (upper-tier minus cohort success in the query's cell, within a radius); before
there is an index, or outside every cell, it is the difference of the tiers' smoothed success
rates so far, and `prior_gain` before any history. Confidence is calibrated per model from
graded history; θ_crit is calibrated too (see evidence.calibrate_theta). A response is judged
once its query's embedding is known and the grader has closed every earlier cycle
(agents.cycles): its evidence is exactly that of cycles before its own, whatever the arrival
order, so it can never see its own grade.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from agents.cohort import Cohort
from agents.cycles import Closure
from agents.meta_selector.evidence import Evidence, Graded, build, version_key
from events.control import GapIndexUpdated
from events.serving import (
    Accepted,
    CycleGraded,
    Escalated,
    QueryReceived,
    ResponseGenerated,
    ResponseGraded,
)
from events.vectors import decode_vector
from runtime.policy import AnyEnvelope, Emit, Policy


@dataclass(frozen=True)
class MetaConfig:
    lam: float = 0.2  # λ: quality points one unit of normalised cost is worth
    delta: float = 0.1  # accepted-on-confidence answers must be ≥ 1 - δ right
    theta_default: float = 0.8
    prior_gain: float = 0.5
    cell_radius: float = 0.8
    history: int = 1000  # graded answers per member the calibration uses (most recent)
    history_cycles: int = 30  # cycles of graded rows kept
    controlled: bool = False  # the sleep half runs: cycle c also waits for the gap map of c-1
    rule: Literal["evi", "confidence", "never"] = "evi"  # baselines: see agents.config


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class State:
    closure: Closure = field(default_factory=Closure)
    #: Fitted from graded rows of cycles ≤ closure.through: what cycle through+1 is judged by.
    evidence: Evidence = field(default_factory=lambda: build((), (), history=1, delta=0.1,
                                                             theta_default=0.8))
    graded: tuple[Graded, ...] = ()
    gaps: tuple[GapIndexUpdated, ...] = ()
    fitted: int = -1  # the evidence holds every cycle ≤ fitted (what cycle fitted+1 needs)
    queries: MappingProxyType[str, QueryReceived] = field(default_factory=_empty)
    #: Served answers not judged yet: their query or their evidence has not arrived.
    waiting: MappingProxyType[str, tuple[ResponseGenerated, ...]] = field(default_factory=_empty)


def _gaps_through(cohort: Cohort, state: State) -> int:
    """Last cycle up to which every cohort's gap map is in."""
    tiers = {t for t in {m.tier for m in cohort.members} if t < cohort.top_tier}
    have = {(g.cycle, g.tier) for g in state.gaps}
    through = state.fitted
    while all((through + 1, t) in have for t in tiers):
        through += 1
    return through


def refit(cohort: Cohort, state: State, closure: Closure, cfg: MetaConfig) -> State:
    """Evidence of every cycle up to the closed one (and, with the sleep half, up to the last
    gap map in); rows and queries of closed cycles beyond what the evidence keeps are
    forgotten (memory bounded by cycles, not arrivals)."""
    state = replace(state, closure=closure)
    through = closure.through
    if cfg.controlled:
        through = min(through, _gaps_through(cohort, state))
    if through <= state.fitted:
        return state
    graded = tuple(g for g in state.graded if g.cycle > through - cfg.history_cycles)
    evidence = build(
        (g for g in graded if g.cycle <= through), (g for g in state.gaps if g.cycle <= through),
        history=cfg.history, delta=cfg.delta, theta_default=cfg.theta_default,
    )
    queries = {k: q for k, q in state.queries.items() if q.cycle > closure.through}
    return replace(state, fitted=through, evidence=evidence, graded=graded,
                   queries=MappingProxyType(queries))


def expected_gain(ev: Evidence, tier: int, x: np.ndarray | None, cfg: MetaConfig,
                  model_id: str = "") -> float:
    """Ê[Q_up - Q_answer] in the query's cell: the upper tier's success there minus that of
    the member that answered (the cell's cover — its best member — when the map has no
    evidence of this one)."""
    if x is not None and tier in ev.cells:
        cells = ev.cells[tier]
        d = np.linalg.norm(cells.centroids - x, axis=1)
        nearest = int(np.argmin(d))
        if d[nearest] <= cfg.cell_radius:
            own = cells.member_success[nearest].get(model_id, float(cells.cover[nearest]))
            return float(cells.solvable_up[nearest]) - own
    if tier in ev.tier_success and tier + 1 in ev.tier_success:
        return ev.tier_success[tier + 1] - ev.tier_success[tier]
    return cfg.prior_gain


def judge(cohort: Cohort, cfg: MetaConfig, ev: Evidence, r: ResponseGenerated,
          q: QueryReceived) -> Accepted | Escalated:
    version = version_key(r.model_id, r.adapter)
    cal = ev.calibrators.get(version)
    if r.adapter is not None and cal is None:
        p = 0.0  # a new version is not trusted on its own word until graded answers calibrate it
    else:
        p = float(cal.predict([r.confidence])[0]) if cal else r.confidence
    theta = ev.thetas.get(version, cfg.theta_default)
    about: dict[str, Any] = {"query_id": r.query_id, "cycle": r.cycle, "model_id": r.model_id,
                             "tier": r.tier, "p_success": p, "theta": theta}
    if r.tier >= cohort.top_tier or cfg.rule == "never":
        return Accepted(**about, evi=0.0)
    target = cohort.cheapest(r.tier + 1)
    x = decode_vector(q.embedding) if q.embedding else None
    evi = expected_gain(ev, r.tier, x, cfg, r.model_id) - cfg.lam * (
        target.cost - cohort.member(r.model_id).cost)
    if p < theta and (evi > 0 or cfg.rule == "confidence"):
        return Escalated(**about, evi=evi, to_tier=target.tier, to_model=target.model_id,
                         text=q.text)
    return Accepted(**about, evi=evi)


def _judge_ready(cohort: Cohort, cfg: MetaConfig, state: State, qids: list[str]
                 ) -> tuple[list[Emit], State]:
    """Judge the waiting answers of `qids` whose query and evidence are both in."""
    emits: list[Emit] = []
    waiting = dict(state.waiting)
    for qid in qids:
        q = state.queries.get(qid)
        responses = waiting.get(qid, ())
        if q is None or not responses or state.fitted < q.cycle - 1:
            continue
        for r in responses:
            emits.append(Emit(judge(cohort, cfg, state.evidence, r, q), subject=r.query_id,
                              correlationid=f"cycle-{r.cycle}",
                              key=f"verdict|{r.query_id}|{r.model_id}"))
        del waiting[qid]
    return emits, replace(state, waiting=MappingProxyType(waiting))


def _closed(cohort: Cohort, cfg: MetaConfig, state: State, closure: Closure
            ) -> tuple[list[Emit], State]:
    before = state.fitted
    state = refit(cohort, state, closure, cfg)
    if state.fitted == before:
        return [], state
    return _judge_ready(cohort, cfg, state, sorted(state.waiting))


def step(cohort: Cohort, cfg: MetaConfig, state: State, event: AnyEnvelope
         ) -> tuple[list[Emit], State]:
    data = event.data
    if isinstance(data, ResponseGenerated) and not data.shadow:
        if data.cycle <= state.closure.through:
            return [], state  # an answer of a closed cycle: nothing waits for it
        waiting = {**state.waiting,
                   data.query_id: (*state.waiting.get(data.query_id, ()), data)}
        state = replace(state, waiting=MappingProxyType(waiting))
        return _judge_ready(cohort, cfg, state, [data.query_id])
    if isinstance(data, QueryReceived):
        if data.cycle <= state.closure.through:
            return [], state
        state = replace(state, queries=MappingProxyType({**state.queries,
                                                         data.query_id: data}))
        emits, state = _judge_ready(cohort, cfg, state, [data.query_id])
        more, state = _closed(cohort, cfg, state, state.closure.with_query(data.cycle))
        return emits + more, state
    if isinstance(data, ResponseGraded):
        if not data.final and data.cycle > state.closure.through:
            row = Graded(data.cycle, data.query_id, version_key(data.model_id, data.adapter),
                         data.tier, data.confidence,
                         data.success)
            state = replace(state, graded=(*state.graded, row))
        return _closed(cohort, cfg, state, state.closure.with_grade(data.cycle))
    if isinstance(data, CycleGraded):
        return _closed(cohort, cfg, state, state.closure.with_closed(
            data.cycle, data.grades, data.queries))
    if isinstance(data, GapIndexUpdated):
        if data.cycle <= state.fitted:
            return [], state
        gaps = tuple(sorted((*state.gaps, data), key=lambda g: (g.cycle, g.tier)))[-8:]
        return _closed(cohort, cfg, replace(state, gaps=gaps), state.closure)
    return [], state


def make_policy(cohort: Cohort, cfg: MetaConfig = MetaConfig()) -> Policy[State]:
    return Policy.stepped(State(), lambda s, e: step(cohort, cfg, s, e))
