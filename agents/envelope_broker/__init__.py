"""The envelope broker: `faststream run agents.envelope_broker:app` (service.py, policy.py)."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
