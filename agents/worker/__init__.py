"""The worker agent: `faststream run agents.worker:app` (service.py); its domain is policy.py."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
