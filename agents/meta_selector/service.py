"""The meta_selector agent as a FastStream app, configured by $SLEEPWAKE_CONFIG."""

from agents.registry import pure_agent

agent = pure_agent("meta_selector")
app = agent.app
