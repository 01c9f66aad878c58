"""The ponger agent as a FastStream app."""

from agents.ponger.policy import POLICY
from runtime.shell import agent_app

agent = agent_app("ponger", POLICY)
app = agent.app
