"""`uvicorn agents.gateway.http_service:app`: the HTTP front against $SLEEPWAKE_BOOTSTRAP."""

from agents.gateway.http import HttpGateway
from agents.runtime.bus import bootstrap_from_env

gateway = HttpGateway(bootstrap_from_env())
app = gateway.app
