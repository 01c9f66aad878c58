"""The watchdog's events: one measurement per cycle, and an alert when it drifts."""

from __future__ import annotations

from pydantic import Field

from events.envelope import Payload


class CycleCostMeasured(Payload):
    """The cost per query of a fully graded cycle (judged against the baseline once the
    baseline cycles are all measured: `CostDrifted`)."""

    TYPE = "CycleCostMeasured"
    cycle: int = Field(ge=0, description="The cycle measured.", examples=[7])
    queries: int = Field(ge=0, description="Queries of the cycle.", examples=[64])
    cost_per_query: float = Field(ge=0, description="Mean normalised cost of the final "
                                  "answers (always-top = 1.00).", examples=[0.62])


class CostDrifted(Payload):
    """Alert: a cycle's cost per query is further from the baseline than the tolerance."""

    TYPE = "CostDrifted"
    cycle: int = Field(ge=0, description="The cycle that drifted.", examples=[7])
    cost_per_query: float = Field(ge=0, examples=[0.81])
    baseline: float = Field(ge=0, examples=[0.58])
    drift: float = Field(description="(cost - baseline) / baseline.", examples=[0.4])
    tolerance: float = Field(ge=0, description="The configured tolerance.", examples=[0.25])
