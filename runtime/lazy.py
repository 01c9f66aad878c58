"""`faststream run agents.<name>:app` without building the app on every import.

An agent package's `__init__` sets `__getattr__ = service_attr(__name__)`; `app` and `agent`
are then built (config read, models loaded) only when asked for, so importing the package's
pure `policy` module stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def service_attr(package: str) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name in {"app", "agent"}:
            return getattr(importlib.import_module(f"{package}.service"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
