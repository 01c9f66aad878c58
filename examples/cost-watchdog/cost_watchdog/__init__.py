"""A cost watchdog agent: `faststream run cost_watchdog:app` (service.py); policy.py decides."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
