"""The canary judge: `faststream run agents.canary_judge:app` (service.py; domain: policy.py)."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
