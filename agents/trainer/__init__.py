"""The sleeper trainer: `faststream run agents.trainer:app` (service.py; domain: policy.py)."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
