"""The gap cartographer agent as a FastStream app, configured by $SLEEPWAKE_CONFIG."""

from agents.registry import pure_agent

agent = pure_agent("cartographer")
app = agent.app
