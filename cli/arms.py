"""The arms `sleepwake compare` runs: each a change to the run configuration, on the same
traffic and seeds as every other arm.

An arm is data: a name, what it stands for, and the settings it overrides (a nested dict
merged into the base configuration). Arms that need no agent of their own are the same agents
configured differently; that is the point: every arm pays for the same router, the same
serving and the same log, and differs only where the comparison says it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.config import SystemConfig

#: No envelope opens: G never sums this high (the gap map is still drawn, so gap mass is
#: measured on every arm).
NOBODY_SLEEPS = {"sleep": {"min_gap_mass": 1e9}}


@dataclass(frozen=True)
class Arm:
    name: str
    stands_for: str
    overrides: dict[str, Any] = field(default_factory=dict)
    #: The arm this one is another operating point of (a sweep point), if any.
    family: str | None = None

    def config(self, base: SystemConfig, seed: int) -> SystemConfig:
        merged = _merge(base.model_dump(mode="json"), self.overrides)
        merged["traffic"]["seed"] = seed
        return SystemConfig.model_validate(merged)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(into)
    for key, value in extra.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


#: The confidence cascade's routing: the cheapest entry member first, confidence alone.
_CASCADE = {"selector": {"route": "cheapest"}, "meta": {"rule": "confidence"}}

ARMS: tuple[Arm, ...] = (  # the order runs go in: the main comparison first
    Arm("sleep-wake", "the whole system: gap map, envelopes, gap-cell KD, canary"),
    Arm("static", "static routing, no sleep: the same agents, no envelope ever opens (the "
        "paper's 'no sleep' is the same arm here: serving never draws on the training pool)",
        NOBODY_SLEEPS),
    Arm("always-top", "every query answered by the top tier", {"selector": {"route": "top"},
                                                               **NOBODY_SLEEPS}),
    Arm("oracle", "the oracle router: every member answers every query (shadow = 1) and the "
        "cheapest right answer counts, with its cost alone (a bound, not a router)",
        {"traffic": {"shadow": 1.0}, "selector": {"route": "cheapest"},
         "meta": {"rule": "never"}, **NOBODY_SLEEPS}),
    Arm("cheapest-only", "every query answered by the cheapest entry member, never escalated "
        "(the floor PGR is measured from)", {"selector": {"route": "cheapest"},
                                             "meta": {"rule": "never"}, **NOBODY_SLEEPS}),
    Arm("cascade", "confidence cascade (FrugalGPT/AutoMix style): the cheapest entry member "
        "first, escalate when calibrated confidence < θ_crit, no EVI, no sleep",
        _merge(_CASCADE, NOBODY_SLEEPS)),
    Arm("uniform", "uniform fine-tuning: the same budget and schedule, examples from the whole "
        "log instead of the gap cells", {"sleep": {"examples": "uniform"}}),
    Arm("random-sleeper", "a random working member sleeps instead of argmax H_M",
        {"sleep": {"sleeper": "random"}}),
    Arm("distil-escalations", "distil on the escalated queries (online cascade learning) at "
        "the same budget", {"sleep": {"examples": "escalated"}}),
)

def _delta(family: str, base: dict[str, Any], delta: float) -> Arm:
    return Arm(f"{family}@delta={delta}",
               f"{family} with δ = {delta} instead of 0.1 (accepted answers must be ≥ 1 - δ "
               "right, which sets θ_crit): another point on its cost-quality curve",
               _merge(base, {"meta": {"delta": delta}}), family=family)


#: Other operating points of the two routers without training (`--sweep`): δ sets θ_crit,
#: so it moves each along its cost-quality curve; the report's APGR and cost at 95 % of
#: always-top quality read the curve these points draw.
SWEEP: tuple[Arm, ...] = (
    *(_delta("static", NOBODY_SLEEPS, d) for d in (0.03, 0.3, 0.5)),
    *(_delta("cascade", _merge(_CASCADE, NOBODY_SLEEPS), d) for d in (0.3, 0.5, 0.7)),
)

BY_NAME = {arm.name: arm for arm in (*ARMS, *SWEEP)}
