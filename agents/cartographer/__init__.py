"""The gap map agent: `faststream run agents.cartographer:app` (service.py; domain: policy.py)."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
