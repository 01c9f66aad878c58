"""The pinger agent as a FastStream app."""

from agents.pinger.policy import POLICY
from runtime.shell import agent_app

agent = agent_app("pinger", POLICY)
app = agent.app
