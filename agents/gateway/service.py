"""The gateway (traffic source) as a FastStream app, configured by $SLEEPWAKE_CONFIG."""

from agents.config import load_config
from agents.registry import make_gateway
from runtime.shell import agent_app

agent = agent_app("gateway", make_gateway(load_config()))
app = agent.app
