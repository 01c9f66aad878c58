"""One model worker as a FastStream app: $SLEEPWAKE_MODEL names the member it serves."""

import os

from agents.config import ConfigError, load_config
from agents.registry import cohort_of, make_worker
from runtime.shell import Agent

config = load_config()
cohort = cohort_of(config)
model_id = os.environ.get("SLEEPWAKE_MODEL", "")
if model_id not in {m.model_id for m in cohort.members}:
    raise ConfigError(
        f"SLEEPWAKE_MODEL={model_id!r} is not a cohort member; set it to one of "
        + ", ".join(m.model_id for m in cohort.members)
    )
agent = Agent("worker", make_worker(config, cohort.member(model_id), cohort), instance=model_id)
app = agent.app
