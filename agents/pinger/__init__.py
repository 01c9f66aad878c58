"""The pinger agent (proof flow): `faststream run agents.pinger:app`."""

from agents.pinger.policy import POLICY
from agents.runtime.shell import agent_app

agent = agent_app("pinger", POLICY)
app = agent.app

__all__ = ["POLICY", "agent", "app"]
