"""What the watchdog is to the system: it reads the grader's topic and emits two event types.

Declared under the entry-point group `sleepwake.agents` (pyproject.toml); sleepwake derives
its topic `sw.cost_watchdog.v1`, its dead-letter topic and its catalogue entries from it.
"""

from cost_watchdog.events import CostDrifted, CycleCostMeasured
from events.spec import AgentSpec

SPEC = AgentSpec(
    "cost_watchdog", (CycleCostMeasured, CostDrifted), ("grader",),
    "Alerts when a cycle's cost per query drifts from the baseline cycles' mean.",
)
