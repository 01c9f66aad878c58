"""The canary judge agent as a FastStream app, configured by $SLEEPWAKE_CONFIG."""

from agents.registry import pure_agent

agent = pure_agent("canary_judge")
app = agent.app
