"""Cost watchdog: measures each cycle's cost per query and alerts when it drifts.

It reads the grader's topic. A cycle is measured once its `CycleGraded` has arrived and as
many `ResponseGraded` of the cycle as it announces (grades may arrive after the closing, from
other partitions: the count barrier, never arrival order). The baseline is the mean cost per
query of the first `warmup` cycles; every later cycle further from it than `tolerance`
(relative) raises `CostDrifted`. Sums are exact (`math.fsum`) and alerts are keyed by cycle,
so the same log gives the same events in any delivery order, and the audit re-decides them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from agents.config import SystemConfig
from agents.plugins import plugin_settings
from cost_watchdog.events import CostDrifted, CycleCostMeasured
from events.serving import CycleGraded, ResponseGraded
from runtime.policy import AnyEnvelope, Emit, Policy


class WatchdogSettings(BaseModel):
    """`plugins.cost_watchdog` in the run configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warmup: int = Field(default=3, ge=1, description="Cycles whose mean is the baseline.")
    tolerance: float = Field(default=0.25, ge=0, description="Relative drift that alerts.")


@dataclass(frozen=True)
class Tally:
    """One cycle being graded: grades seen, final answers' costs, its closing once in."""

    grades: int = 0
    costs: tuple[float, ...] = ()
    closing: CycleGraded | None = None

    def complete(self) -> bool:
        return self.closing is not None and self.grades >= self.closing.grades


@dataclass(frozen=True)
class State:
    """Cycles being graded, and the cost per query of each measured one (a float a cycle)."""

    open: Mapping[int, Tally] = field(default_factory=lambda: MappingProxyType({}))
    measured: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))
    alerted: frozenset[int] = frozenset()  # cycles judged against the baseline


def baseline(state: State, settings: WatchdogSettings) -> float | None:
    costs = [state.measured.get(c) for c in range(settings.warmup)]
    if any(c is None for c in costs):
        return None
    return math.fsum(c for c in costs if c is not None) / settings.warmup


def step(settings: WatchdogSettings, state: State, event: AnyEnvelope
         ) -> tuple[list[Emit], State]:
    data = event.data
    if isinstance(data, ResponseGraded) and data.cycle not in state.measured:
        tally = state.open.get(data.cycle, Tally())
        costs = tally.costs + ((data.cost_norm,) if data.final and not data.shadow else ())
        state = _with(state, data.cycle, replace(tally, grades=tally.grades + 1, costs=costs))
    elif isinstance(data, CycleGraded) and data.cycle not in state.measured:
        state = _with(state, data.cycle,
                      replace(state.open.get(data.cycle, Tally()), closing=data))
    else:
        return [], state
    return _measure(settings, state)


def _with(state: State, cycle: int, tally: Tally) -> State:
    return replace(state, open=MappingProxyType({**state.open, cycle: tally}))


def _measure(settings: WatchdogSettings, state: State) -> tuple[list[Emit], State]:
    """Measure every complete cycle, then judge every measured cycle the baseline allows."""
    emits: list[Emit] = []
    for cycle, tally in sorted(state.open.items()):
        if tally.complete() and tally.closing is not None:
            cost = math.fsum(tally.costs) / max(tally.closing.queries, 1)
            emits.append(Emit(CycleCostMeasured(cycle=cycle, queries=tally.closing.queries,
                                                cost_per_query=cost),
                              subject=f"cycle-{cycle}", correlationid=f"cycle-{cycle}",
                              key=f"measured|{cycle}"))
            state = replace(state, measured=MappingProxyType({**state.measured, cycle: cost}),
                            open=MappingProxyType({c: t for c, t in state.open.items()
                                                   if c != cycle}))
    base = baseline(state, settings)
    if base is None:
        return emits, state
    for cycle, cost in sorted(state.measured.items()):
        if cycle < settings.warmup or cycle in state.alerted:
            continue
        drift = (cost - base) / base if base > 0 else 0.0
        if abs(drift) > settings.tolerance:
            emits.append(Emit(CostDrifted(cycle=cycle, cost_per_query=cost, baseline=base,
                                          drift=drift, tolerance=settings.tolerance),
                              subject=f"cycle-{cycle}", correlationid=f"cycle-{cycle}",
                              key=f"drifted|{cycle}"))
        state = replace(state, alerted=state.alerted | {cycle})
    return emits, state


def make_policy(config: SystemConfig) -> Policy[State]:
    """The entry point `sleepwake.policies: cost_watchdog`: settings from the run's config."""
    settings = plugin_settings(config, "cost_watchdog", WatchdogSettings)
    return Policy.stepped(State(), lambda state, event: step(settings, state, event))
