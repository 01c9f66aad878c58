"""`uvicorn agents.gateway.http_service:app`: the HTTP front against $SLEEPWAKE_BOOTSTRAP,
configured by $SLEEPWAKE_CONFIG (cohort, shadow share). uvicorn drains on SIGTERM: in-flight
requests finish (each bounded by the front's timeout) before the broker stops."""

from agents.config import load_config
from agents.gateway.http import HttpGateway
from runtime.bus import bootstrap_from_env

gateway = HttpGateway(bootstrap_from_env(), load_config())
app = gateway.app
