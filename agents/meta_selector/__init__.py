"""The meta-selector agent: `faststream run agents.meta_selector:app`."""

from runtime.lazy import service_attr

__getattr__ = service_attr(__name__)
