"""The ponger agent (proof flow): `faststream run agents.ponger:app`."""

from agents.ponger.policy import POLICY
from agents.runtime.shell import agent_app

agent = agent_app("ponger", POLICY)
app = agent.app

__all__ = ["POLICY", "agent", "app"]
