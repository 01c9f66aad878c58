"""Schema evolution: one upcaster per (type, version) step, applied on decode.

A consumer only ever sees the current version of a payload, so policies never branch on
versions; old events in the log stay as they were written (the log is never rewritten).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]


def _ping_v1_to_v2(data: Data) -> Data:
    """Ping v1 had no rally: all v1 pings belonged to one implicit rally."""
    return {**data, "rally": data.get("rally", "legacy")}


#: (type, from_version) -> function returning the data of version from_version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("Ping", 1): _ping_v1_to_v2,
}


class UnknownSchemaVersion(ValueError):
    """No chain of upcasters leads from this version to the current one."""


def upcast(type_name: str, version: int, current: int, data: Data) -> Data:
    """Apply the upcasters from `version` up to `current`, or raise UnknownSchemaVersion."""
    if version > current:
        raise UnknownSchemaVersion(
            f"{type_name} v{version} is newer than this code's v{current}: upgrade the consumer"
        )
    while version < current:
        step = UPCASTERS.get((type_name, version))
        if step is None:
            raise UnknownSchemaVersion(f"no upcaster for {type_name} v{version} -> v{version + 1}")
        data = step(data)
        version += 1
    return data
