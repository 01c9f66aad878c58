"""The watchdog as a FastStream app, configured by $SLEEPWAKE_CONFIG like a built-in agent."""

from agents.registry import pure_agent

agent = pure_agent("cost_watchdog")
app = agent.app
