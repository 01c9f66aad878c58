"""Envelope broker: the control phase of each cycle — budget, sleeper, and member states.

It decides, once per cycle n, in a fixed order: the outcomes due at n (a training result and
the canary judge's gate verdict at an episode's due cycle; one canary slot verdict per cycle
while a canary runs), then Algorithm 3 (cohorts ranked by gap pressure Σ G; an envelope
reserves m_T from the train pool and 2·m_I from the inference pool; pools are returned when it
closes), then the sleeper (argmax H_M among working members not cooling down, never the last
working one). It ends every cycle with `ControlPhaseCompleted(n)`, which carries what cycle
n+1 is served with (states, adapters, canary shares) and the budget in use.

It waits, for cycle n, until every input the phase depends on is in: the gap index of every
cohort for n, and the verdicts above. Those come from other topics in any order, so the
decision is a function of the log, never of arrival order; lockstep traffic opens n+1 only
after the phase (the count barrier extended to the control agents).

Budget (a function of the configuration and the log, never of wall time): B_tot compute
units per cycle, where one unit is the FLOPs of one always-top query. The train pool is
alpha·B_tot; an episode's step budget is fixed when it starts: its slot (`slot_cycles` cycles of
the whole train pool) divided by the cost of one step, priced at its upper bound (every row
of a step at the model's full context), so what it actually spends never exceeds the slot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from agents.budget import step_units
from agents.cohort import Cohort
from events.control import (
    CanaryStarted,
    CanaryView,
    ControlPhaseCompleted,
    EnvelopeClosed,
    EnvelopeOpened,
    GapIndexUpdated,
    MemberView,
    Promoted,
    RolledBack,
    SleepStarted,
    TrafficShifted,
    TrainingCompleted,
    TrainingFailed,
)
from runtime.policy import AnyEnvelope, Emit, Policy

Phase = Literal["sleeping", "canary"]
Outcome = TrainingCompleted | TrainingFailed
Verdict = CanaryStarted | TrafficShifted | Promoted | RolledBack
CloseReason = Literal["promoted", "rolled_back", "failed", "expired"]


@dataclass(frozen=True)
class BrokerConfig:
    alpha: float = 1 / 3
    budget_per_cycle: float = 3000.0  # B_tot, units of one always-top query
    slot_cycles: int = 4
    target_cells: int = 3
    cooldown_cycles: int = 4
    min_gap_mass: float = 0.02
    min_window: int = 384  # graded queries the gap map must rest on before anyone sleeps
    min_cell_gap: float = 0.01  # a cell is a target only with at least this much G
    rows_per_step: int = 64  # target + replay sequences of one training step
    max_tokens: int = 64  # a sequence's upper bound (the model's context)
    unit_flops: float = 1.0  # FLOPs of one always-top query (the cost normaliser)
    horizon: int | None = None  # a run of this many cycles: no episode is due after its end
    sleeper: Literal["hardness", "random"] = "hardness"  # random: a baseline
    seed: int = 0  # the random sleeper's draw


@dataclass(frozen=True)
class Envelope:
    envelope_id: str
    tier: int
    model_id: str
    opened: int
    due: int
    phase: Phase
    train_reserved: float
    infer_reserved: float
    train_per_cycle: float  # what its step budget spends per cycle of its slot


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class State:
    through: int = -1  # control phases completed
    opened: int = 0  # envelopes ever opened (ids)
    gaps: MappingProxyType[tuple[int, int], GapIndexUpdated] = field(default_factory=_empty)
    outcomes: MappingProxyType[str, Outcome] = field(default_factory=_empty)
    verdicts: MappingProxyType[tuple[str, int], Verdict] = field(default_factory=_empty)
    envelopes: MappingProxyType[str, Envelope] = field(default_factory=_empty)
    members: MappingProxyType[str, MemberView] = field(default_factory=_empty)
    canaries: MappingProxyType[str, CanaryView] = field(default_factory=_empty)


def _cohorts(cohort: Cohort) -> list[int]:
    return [t for t in sorted({m.tier for m in cohort.members}) if t < cohort.top_tier]


def _ready(cohort: Cohort, state: State, n: int) -> bool:
    if any((n, t) not in state.gaps for t in _cohorts(cohort)):
        return False
    for env in state.envelopes.values():
        if env.phase == "sleeping" and env.due == n:
            outcome = state.outcomes.get(env.envelope_id)
            if outcome is None:
                return False
            judged = (env.envelope_id, n) in state.verdicts
            if isinstance(outcome, TrainingCompleted) and not judged:
                return False
        if env.phase == "canary" and (env.envelope_id, n) not in state.verdicts:
            return False
    return True


def _member(state: State, model_id: str) -> MemberView:
    return state.members.get(model_id, MemberView())


def _with_member(state: State, model_id: str, view: MemberView) -> State:
    return replace(state, members=MappingProxyType({**state.members, model_id: view}))


def _close(cfg: BrokerConfig, state: State, env: Envelope, n: int, reason: CloseReason,
           view: MemberView) -> tuple[list[Emit], State]:
    """End an envelope: its reservations return to the pools, its member works again and
    rests `cooldown_cycles` before it may sleep again."""
    view = view.model_copy(update={"state": "WORKING",
                                   "cooling_until": n + 1 + cfg.cooldown_cycles})
    envelopes = {k: v for k, v in state.envelopes.items() if k != env.envelope_id}
    canaries = {k: v for k, v in state.canaries.items() if k != env.model_id}
    state = replace(state, envelopes=MappingProxyType(envelopes),
                    canaries=MappingProxyType(canaries))
    state = _with_member(state, env.model_id, view)
    emit = Emit(EnvelopeClosed(envelope_id=env.envelope_id, cycle=n, reason=reason),
                subject=env.envelope_id, correlationid=f"cycle-{n}",
                key=f"envelope|{env.envelope_id}|close")
    return [emit], state


def _settle(cfg: BrokerConfig, state: State, env: Envelope, n: int
            ) -> tuple[list[Emit], State]:
    """Apply what happened to one envelope by cycle n."""
    view = _member(state, env.model_id)
    if env.phase == "sleeping" and env.due == n:
        outcome = state.outcomes[env.envelope_id]
        if isinstance(outcome, TrainingFailed):
            return _close(cfg, state, env, n, "failed", view)
    elif env.phase != "canary":
        return [], state
    verdict = state.verdicts[(env.envelope_id, n)]
    if isinstance(verdict, CanaryStarted) and verdict.adapter is not None:
        canary = CanaryView(model_id=env.model_id, envelope_id=env.envelope_id,
                            version=verdict.version, share=verdict.share,
                            adapter=verdict.adapter, target_centroids=verdict.target_centroids,
                            radius=verdict.radius)
        state = replace(state, canaries=MappingProxyType({**state.canaries,
                                                          env.model_id: canary}))
        envelopes = {**state.envelopes, env.envelope_id: replace(env, phase="canary")}
        state = replace(state, envelopes=MappingProxyType(envelopes))
        return [], _with_member(state, env.model_id, view.model_copy(update={"state": "CANARY"}))
    if isinstance(verdict, TrafficShifted) and env.model_id in state.canaries:
        canary = state.canaries[env.model_id].model_copy(update={"share": verdict.share})
        return [], replace(state, canaries=MappingProxyType({**state.canaries,
                                                             env.model_id: canary}))
    if isinstance(verdict, Promoted):
        proven = state.canaries.get(env.model_id)
        promoted = view.model_copy(update={
            "version": verdict.version,
            "adapter": verdict.adapters[0] if verdict.adapters else None,
            "good_at": list(proven.target_centroids) if proven else []})
        return _close(cfg, state, env, n, "promoted", promoted)
    return _close(cfg, state, env, n, "rolled_back", view)  # RolledBack (gate or slot)


def _sleeper(cohort: Cohort, cfg: BrokerConfig, state: State, gap: GapIndexUpdated, n: int
             ) -> str | None:
    """argmax H_M among working members not cooling down, if one may sleep at all (or, as a
    baseline, a seeded random one of them)."""
    members = [m.model_id for m in cohort.tier(gap.tier)]
    working = [m for m in members if _member(state, m).state == "WORKING"]
    # a member sleeps on its base weights: one already promoted is not retrained (stacking a
    # second adapter on the first is not built yet)
    fresh = [m for m in working if _member(state, m).version == 0]
    if (len(working) < 2 and len(members) > 1) or not working:
        return None  # never put the last working member of a cohort to sleep
    rested = [m for m in fresh if _member(state, m).cooling_until <= n + 1]
    if not rested:
        return None
    if cfg.sleeper == "random":
        draw = hashlib.sha256(f"sleeper|{cfg.seed}|{n}|{gap.tier}".encode()).digest()
        return sorted(rested)[int.from_bytes(draw[:8], "big") % len(rested)]
    return max(rested, key=lambda m: (gap.hardness.get(m, 0.0), m))


def _allocate(cohort: Cohort, cfg: BrokerConfig, state: State, n: int
              ) -> tuple[list[Emit], State]:
    """Algorithm 3 over the cohorts, most gap pressure first."""
    b_tot = cfg.budget_per_cycle
    train_left = cfg.alpha * b_tot - sum(e.train_reserved for e in state.envelopes.values())
    infer_left = (1 - cfg.alpha) * b_tot - sum(e.infer_reserved for e in state.envelopes.values())
    m_t, m_i = cfg.alpha * b_tot, (1 - cfg.alpha) * b_tot / 2
    emits: list[Emit] = []
    gaps = sorted((state.gaps[(n, t)] for t in _cohorts(cohort)),
                  key=lambda g: (-g.gap_mass, g.tier))
    for gap in gaps:
        busy = any(e.tier == gap.tier for e in state.envelopes.values())
        if busy or gap.gap_mass < cfg.min_gap_mass or gap.window < cfg.min_window:
            continue
        if cfg.horizon is not None and n + cfg.slot_cycles >= cfg.horizon:
            continue  # it would train for a cycle that never comes
        if train_left + 1e-9 < m_t or infer_left + 1e-9 < 2 * m_i:
            break
        model_id = _sleeper(cohort, cfg, state, gap, n)
        if model_id is None:
            continue
        member = cohort.member(model_id)
        units = step_units(member.params, cfg.rows_per_step, cfg.max_tokens, cfg.unit_flops)
        steps = int(m_t * cfg.slot_cycles // units)
        if steps < 1:
            continue
        targets = sorted((c for c in gap.cells if c.gap >= cfg.min_cell_gap),
                         key=lambda c: (-c.gap, c.cell_id))
        targets = targets[: cfg.target_cells]
        if not targets:
            continue
        train_left, infer_left = train_left - m_t, infer_left - 2 * m_i
        env_id = f"env-{state.opened}"
        env = Envelope(env_id, gap.tier, model_id, n, n + cfg.slot_cycles, "sleeping", m_t,
                       2 * m_i, steps * units / cfg.slot_cycles)
        view = _member(state, model_id)
        corr = f"cycle-{n}"
        emits += [
            Emit(EnvelopeOpened(envelope_id=env_id, cycle=n, tier=gap.tier,
                                task_class=f"tier-{gap.tier}", train_reserved=m_t,
                                infer_reserved=2 * m_i, train_pool_left=max(train_left, 0.0),
                                infer_pool_left=max(infer_left, 0.0)),
                 subject=env_id, correlationid=corr, key=f"envelope|{env_id}|open"),
            Emit(SleepStarted(envelope_id=env_id, cycle=n, due_cycle=env.due, model_id=model_id,
                              target_cells=targets, step_budget=steps,
                              hardness=round(gap.hardness.get(model_id, 0.0), 6),
                              base_version=view.version, base_adapter=view.adapter),
                 subject=model_id, correlationid=corr, key=f"sleep|{env_id}"),
        ]
        state = replace(state, opened=state.opened + 1, envelopes=MappingProxyType(
            {**state.envelopes, env_id: env}))
        state = _with_member(state, model_id, view.model_copy(update={"state": "SLEEPING"}))
    return emits, state


def control_phase(cohort: Cohort, cfg: BrokerConfig, state: State, n: int
                  ) -> tuple[list[Emit], State]:
    """Cycle n's control phase: outcomes, allocation, then the phase's closing event."""
    emits: list[Emit] = []
    for env_id in sorted(state.envelopes):
        more, state = _settle(cfg, state, state.envelopes[env_id], n)
        emits += more
    more, state = _allocate(cohort, cfg, state, n)
    emits += more
    members = {m.model_id: _member(state, m.model_id) for m in cohort.members
               if m.tier < cohort.top_tier}
    sleeping = [e for e in state.envelopes.values() if e.phase == "sleeping" and e.due > n]
    emits.append(Emit(ControlPhaseCompleted(
        cycle=n, members=members, canaries=[state.canaries[k] for k in sorted(state.canaries)],
        budget_total=cfg.budget_per_cycle,
        train_used=round(sum(e.train_per_cycle for e in sleeping), 6),
        infer_reserved=round((1 - cfg.alpha) * cfg.budget_per_cycle, 6),
    ), subject=f"cycle-{n}", correlationid=f"cycle-{n}", key=f"control|{n}"))
    return emits, _forget(replace(state, through=n), n)


def _forget(state: State, n: int) -> State:
    """Inputs of completed phases are no longer needed (memory bounded by cycles)."""
    gaps = {k: v for k, v in state.gaps.items() if k[0] > n}
    verdicts = {k: v for k, v in state.verdicts.items() if k[1] > n}
    outcomes = {k: v for k, v in state.outcomes.items() if k in state.envelopes}
    return replace(state, gaps=MappingProxyType(gaps), verdicts=MappingProxyType(verdicts),
                   outcomes=MappingProxyType(outcomes))


def _fold(state: State, data: object) -> State:
    if isinstance(data, GapIndexUpdated) and data.cycle > state.through:
        return replace(state, gaps=MappingProxyType({**state.gaps,
                                                     (data.cycle, data.tier): data}))
    if isinstance(data, TrainingCompleted | TrainingFailed):
        return replace(state, outcomes=MappingProxyType({**state.outcomes,
                                                         data.envelope_id: data}))
    if isinstance(data, CanaryStarted | TrafficShifted | Promoted | RolledBack) \
            and data.cycle > state.through:
        key = (data.envelope_id, data.cycle)
        return replace(state, verdicts=MappingProxyType({**state.verdicts, key: data}))
    return state


def step(cohort: Cohort, cfg: BrokerConfig, state: State, event: AnyEnvelope
         ) -> tuple[list[Emit], State]:
    state = _fold(state, event.data)
    emits: list[Emit] = []
    while _ready(cohort, state, state.through + 1):
        more, state = control_phase(cohort, cfg, state, state.through + 1)
        emits += more
    return emits, state


def make_policy(cohort: Cohort, cfg: BrokerConfig = BrokerConfig()) -> Policy[State]:
    return Policy.stepped(State(), lambda s, e: step(cohort, cfg, s, e))
