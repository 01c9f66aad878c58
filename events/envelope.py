"""The CloudEvents-style envelope every event travels in (docs/design.md, 'The log').

Payloads are frozen pydantic models that know their event type and schema version; the
envelope adds identity, ordering and causality. Ids of derived events are deterministic
(uuid5 of the cause), so an agent that reprocesses a redelivered event re-emits the *same*
events and every consumer dedupes them by id.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Bounds every payload obeys, so that no schema-valid event can carry what a policy or a
#: DuckDB column cannot use: integers fit a signed 64-bit column (and a float exactly),
#: text is bounded, floats are finite (`allow_inf_nan=False`).
MAX_INT = 2**53 - 1
MAX_TEXT = 16_384
MAX_ITEMS = 4_096

#: Namespace of derived event ids: uuid5(NAMESPACE, "<source>|<cause id>|<index>").
NAMESPACE = uuid.UUID("6f1d7c52-4b3e-4f7a-9a7e-2f6b8c1d5e00")


class Payload(BaseModel):
    """Base of every event payload: frozen, closed to unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    #: The event type name on the wire (CloudEvents `type`), e.g. "QueryReceived".
    TYPE: ClassVar[str] = ""
    #: The current schema version; older versions are upcast on decode.
    VERSION: ClassVar[int] = 1

    @model_validator(mode="after")
    def _bounded(self) -> Payload:
        for name, value in self.__dict__.items():  # not `for ... in self`: hot path
            if (bad := _violation(value)) is not None:
                raise ValueError(f"{name}{bad}")
        return self


def _violation(value: Any) -> str | None:
    """The first bound `value` breaks (nested values too), as the path below it and the
    reason, e.g. ".3.n: integer out of range"; None if it keeps them all. Scalars, the
    common case, are told apart by their exact type first; paths are built only on failure."""
    kind = type(value)
    if kind is float or kind is bool or value is None:
        return None
    if kind is str or isinstance(value, str):
        return None if len(value) <= MAX_TEXT else f": text longer than {MAX_TEXT} characters"
    if isinstance(value, int):
        return None if abs(value) <= MAX_INT else f": integer out of range (|n| <= {MAX_INT})"
    if isinstance(value, dict | list | tuple):
        if len(value) > MAX_ITEMS:
            return f": more than {MAX_ITEMS} items"
        keyed = isinstance(value, dict)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if keyed and (bad := _violation(key)) is not None:
                return bad
            if (bad := _violation(item)) is not None:
                return f".{key}{bad}"
    elif isinstance(value, BaseModel):
        for name, item in value.__dict__.items():
            if (bad := _violation(item)) is not None:
                return f".{name}{bad}"
    return None


P = TypeVar("P", bound=Payload)


class Envelope(BaseModel, Generic[P]):
    """One event on the log: CloudEvents 1.0 attribute names plus a typed `data` payload."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: uuid.UUID = Field(description="Event id, the dedupe key of every consumer.")
    source: str = Field(
        description="Producing agent (and instance).", examples=["selector/0"], min_length=1,
        max_length=256,
    )
    type: str = Field(description="Event type name.", examples=["QueryReceived"], min_length=1,
                      max_length=128)
    schemaversion: int = Field(description="Schema version of `data`.", ge=1, le=1000,
                               examples=[1])
    time: datetime = Field(description="When the producer emitted it (informational only).")
    subject: str = Field(
        description="Stream key (Kafka message key): a query id, model id or cycle.",
        examples=["q-000042"],
        min_length=1,
        max_length=256,
    )
    sequence: int = Field(
        default=0, ge=0, le=MAX_INT,
        description="Position of the event in its subject's stream, if known.",
    )
    correlationid: str | None = Field(
        default=None, description="The cycle this event belongs to, `cycle-<n>` (n < 10⁹).",
        examples=["cycle-3"], pattern=r"^cycle-\d{1,9}$",
    )
    causationid: uuid.UUID | None = Field(
        default=None, description="Id of the event that caused this one."
    )
    data: P = Field(description="The typed payload.")


@functools.cache
def envelope_of(payload: type[Payload]) -> type[Envelope[Any]]:
    """`Envelope[payload]`, looked up once per type (pydantic's own lookup costs more than
    building an envelope, on every event in and out)."""
    return Envelope[payload]  # type: ignore[valid-type]


def cycle_of(correlationid: str | None) -> int | None:
    """The cycle number of a correlation id "cycle-<n>" (None when there is none)."""
    if not correlationid or not correlationid.startswith("cycle-"):
        return None
    return int(correlationid[6:])


def derived_id(source: str, cause: uuid.UUID | str, index: int = 0) -> uuid.UUID:
    """Deterministic id for the index-th event `source` emits in reaction to `cause`."""
    return uuid.uuid5(NAMESPACE, f"{source}|{cause}|{index}")


def make_envelope(
    data: P,
    *,
    source: str,
    subject: str,
    id: uuid.UUID | None = None,
    cause: Envelope[Any] | None = None,
    index: int = 0,
    correlationid: str | None = None,
    sequence: int = 0,
    time: datetime | None = None,
) -> Envelope[P]:
    """Wrap a payload; the id derives from (source, cause, index) when there is a cause."""
    if id is None:
        id = uuid.uuid4() if cause is None else derived_id(source, cause.id, index)
    typed: Any = envelope_of(type(data))
    # The payload is a validated model and the other fields are built here, so the envelope
    # is assembled without validating again (the hot path of every agent's output); the
    # receiving side validates the bytes in full.
    return typed.model_construct(
        id=id,
        source=source,
        type=data.TYPE,
        schemaversion=data.VERSION,
        time=time or datetime.now(UTC),
        subject=subject,
        sequence=sequence,
        correlationid=correlationid if correlationid is not None or cause is None
        else cause.correlationid,
        causationid=cause.id if cause is not None else None,
        data=data,
    )
