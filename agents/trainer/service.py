"""The sleeper trainer as a FastStream app, configured by $SLEEPWAKE_CONFIG."""

from agents.config import load_config
from agents.registry import trainer_part

agent = trainer_part(load_config()).agent()
app = agent.app
