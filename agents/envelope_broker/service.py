"""The envelope broker as a FastStream app, configured by $SLEEPWAKE_CONFIG."""

from agents.registry import pure_agent

agent = pure_agent("envelope_broker")
app = agent.app
