"""Events as archive rows: the columns every projection reads, positions included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.codec import AnyEnvelope
from events.envelope import cycle_of

#: Archive columns, in table order; a batch is a list per column (bulk insert via unnest).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "UUID"),
    ("topic", "VARCHAR"),
    ("partition", "INTEGER"),
    ("offset", "BIGINT"),
    ("type", "VARCHAR"),
    ("schemaversion", "INTEGER"),
    ("source", "VARCHAR"),
    ("subject", "VARCHAR"),
    ("sequence", "BIGINT"),
    ("correlationid", "VARCHAR"),
    ("causationid", "UUID"),
    ("time", "TIMESTAMPTZ"),
    ("cycle", "INTEGER"),
    ("data", "JSON"),
    ("raw", "BLOB"),
)

@dataclass(frozen=True)
class Position:
    """Where an event was read: the tracking key."""

    topic: str
    partition: int
    offset: int | None  # None where the transport has no offsets (the in-memory test broker)


def row(event: AnyEnvelope, at: Position, raw: bytes) -> tuple[Any, ...]:
    return (
        str(event.id), at.topic, at.partition, at.offset, event.type, event.schemaversion,
        event.source, event.subject, event.sequence, event.correlationid,
        str(event.causationid) if event.causationid else None, event.time,
        cycle_of(event.correlationid), event.data.model_dump_json(), raw,
    )
