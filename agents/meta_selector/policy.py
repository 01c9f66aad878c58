"""Meta-selector (Algorithm 1): ESCALATE iff calibrated conf < θ_crit and EVI > 0.

EVI(x) = Ê[Q_{n+1} - Q_n | cell(x)] - λ·(C_{n+1} - C_n). The expected gain is read from the
gap index (upper-tier minus cohort success in the query's cell, within a radius); before
there is an index, or outside every cell, it is the difference of the tiers' smoothed success
rates so far, and `prior_gain` before any history. Confidence is calibrated per model from
graded history; θ_crit is calibrated too (see evidence.calibrate_theta). A response is judged
once both it and its query's embedding are known, whichever arrives first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from agents.cohort import Cohort
from agents.meta_selector.evidence import Evidence, Graded, build
from agents.runtime.policy import AnyEnvelope, Emit, Policy
from events.control import GapIndexUpdated
from events.serving import Accepted, Escalated, QueryReceived, ResponseGenerated, ResponseGraded
from events.vectors import decode_vector


@dataclass(frozen=True)
class MetaConfig:
    lam: float = 0.2  # λ: quality points one unit of normalised cost is worth
    delta: float = 0.1  # accepted-on-confidence answers must be ≥ 1 - δ right
    theta_default: float = 0.8
    prior_gain: float = 0.5
    cell_radius: float = 0.8
    history: int = 1000
    window: int = 5000


@dataclass(frozen=True)
class State:
    cycle: int = -1
    evidence: Evidence = field(default_factory=lambda: build((), (), history=1, delta=0.1,
                                                             theta_default=0.8))
    graded: tuple[Graded, ...] = ()
    gaps: tuple[GapIndexUpdated, ...] = ()
    queries: MappingProxyType[str, QueryReceived] = field(
        default_factory=lambda: MappingProxyType({}))
    waiting: MappingProxyType[str, tuple[ResponseGenerated, ...]] = field(
        default_factory=lambda: MappingProxyType({}))


def advance(state: State, cycle: int, cfg: MetaConfig) -> State:
    """Refit the evidence from everything of cycles before `cycle`."""
    if cycle <= state.cycle:
        return state
    evidence = build(
        (g for g in state.graded if g[0] < cycle), (g for g in state.gaps if g.cycle < cycle),
        history=cfg.history, delta=cfg.delta, theta_default=cfg.theta_default,
    )
    return replace(state, cycle=cycle, evidence=evidence)


def expected_gain(ev: Evidence, tier: int, x: np.ndarray | None, cfg: MetaConfig) -> float:
    if x is not None and tier in ev.cells:
        cents, gain = ev.cells[tier]
        d = np.linalg.norm(cents - x, axis=1)
        nearest = int(np.argmin(d))
        if d[nearest] <= cfg.cell_radius:
            return float(gain[nearest])
    if tier in ev.tier_success and tier + 1 in ev.tier_success:
        return ev.tier_success[tier + 1] - ev.tier_success[tier]
    return cfg.prior_gain


def judge(cohort: Cohort, cfg: MetaConfig, ev: Evidence, r: ResponseGenerated,
          q: QueryReceived) -> Accepted | Escalated:
    cal = ev.calibrators.get(r.model_id)
    p = float(cal.predict([r.confidence])[0]) if cal else r.confidence
    theta = ev.thetas.get(r.model_id, cfg.theta_default)
    about: dict[str, Any] = {"query_id": r.query_id, "cycle": r.cycle, "model_id": r.model_id,
                             "tier": r.tier, "p_success": p, "theta": theta}
    if r.tier >= cohort.top_tier:
        return Accepted(**about, evi=0.0)
    target = cohort.cheapest(r.tier + 1)
    x = decode_vector(q.embedding) if q.embedding else None
    evi = expected_gain(ev, r.tier, x, cfg) - cfg.lam * (
        target.cost - cohort.member(r.model_id).cost)
    if p < theta and evi > 0:
        return Escalated(**about, evi=evi, to_tier=target.tier, to_model=target.model_id,
                         text=q.text)
    return Accepted(**about, evi=evi)


def make_policy(cohort: Cohort, cfg: MetaConfig = MetaConfig()) -> Policy[State]:
    def verdicts(state: State, responses: tuple[ResponseGenerated, ...],
                 q: QueryReceived) -> list[Emit]:
        out = []
        for r in responses:
            ev = advance(state, r.cycle, cfg).evidence
            out.append(Emit(judge(cohort, cfg, ev, r, q), subject=r.query_id,
                            correlationid=f"cycle-{r.cycle}",
                            key=f"verdict|{r.query_id}|{r.model_id}"))
        return out

    def decide(state: State, event: AnyEnvelope) -> list[Emit]:
        data = event.data
        if isinstance(data, ResponseGenerated) and not data.shadow:
            q = state.queries.get(data.query_id)
            return verdicts(state, (data,), q) if q is not None else []
        if isinstance(data, QueryReceived):
            return verdicts(state, state.waiting.get(data.query_id, ()), data)
        return []

    def evolve(state: State, event: AnyEnvelope) -> State:
        data = event.data
        if isinstance(data, ResponseGenerated | QueryReceived):
            state = advance(state, data.cycle, cfg)  # cache this cycle's evidence
        if isinstance(data, ResponseGenerated) and not data.shadow:
            if data.query_id not in state.queries:
                waiting = {**state.waiting,
                           data.query_id: (*state.waiting.get(data.query_id, ()), data)}
                return replace(state, waiting=MappingProxyType(waiting))
            return state
        if isinstance(data, QueryReceived):
            queries = dict(state.queries)
            queries[data.query_id] = data
            while len(queries) > cfg.window:
                del queries[next(iter(queries))]
            waiting = dict(state.waiting)
            waiting.pop(data.query_id, None)
            return replace(state, queries=MappingProxyType(queries),
                           waiting=MappingProxyType(waiting))
        if isinstance(data, ResponseGraded) and not data.final:
            row = (data.cycle, data.query_id, data.model_id, data.tier, data.confidence,
                   data.success)
            return replace(state, graded=(*state.graded, row)[-20 * cfg.history:])
        if isinstance(data, GapIndexUpdated):
            return replace(state, gaps=(*state.gaps, data)[-8:])
        return state

    return Policy(initial=State(), decide=decide, evolve=evolve)
