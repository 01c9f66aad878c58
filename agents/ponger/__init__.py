"""The ponger agent: `faststream run agents.ponger:app` (service.py); its domain is policy.py."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
