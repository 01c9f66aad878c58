"""Bytes <-> envelopes, and the four ways an input can be bad (docs/design.md, 'The log').

`decode` never lets a malformed message pass silently: it raises `BadEvent` with a reason
code, which the agent shell turns into a dead letter.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ValidationError

from events.catalogue import CATALOGUE
from events.envelope import Envelope, Payload, envelope_of
from events.topology import producer_of
from events.upcasting import UnknownSchemaVersion, upcast

Reason = Literal[
    "undecodable", "unknown_type", "invalid_payload", "unknown_schema_version", "too_large",
    "too_deep", "wrong_producer", "handler_error",
]

#: The largest event accepted (bytes on the wire). Real events are a few KB (an embedding is
#: 1 KB); Kafka's default record limit is 1 MiB.
MAX_EVENT_BYTES = 256 * 1024
#: The deepest JSON nesting accepted; the deepest real event nests 5 levels.
MAX_DEPTH = 16

AnyEnvelope = Envelope[Any]


class BadEvent(ValueError):
    """An input that cannot become an event; `reason` is one of the four dead-letter kinds."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


def encode(envelope: Envelope[Any]) -> bytes:
    """The wire form: compact JSON of the envelope."""
    return envelope.model_dump_json().encode()


def decode(raw: bytes | None, topic: str | None = None) -> AnyEnvelope:
    """Parse, upcast and validate one message; raise BadEvent saying what is wrong.

    With `topic` (where the record was read), an event whose type is not produced by that
    topic's owner is rejected as `wrong_producer`.
    """
    try:
        event = _decode(raw)
    except BadEvent:
        raise
    except (RecursionError, MemoryError) as exc:
        raise BadEvent("too_deep", f"cannot be parsed: {type(exc).__name__}") from exc
    except Exception as exc:  # a decoder must never let an input escape as a crash
        raise BadEvent("undecodable", f"{type(exc).__name__}: {exc}"[:500]) from exc
    if topic is not None:
        owner = producer_of(type(event.data)).topic
        if owner != topic:
            raise BadEvent("wrong_producer",
                           f"{event.type} is produced only on {owner}, arrived on {topic}")
    return event


def _decode(raw: bytes | None) -> AnyEnvelope:
    if raw is not None and len(raw) > MAX_EVENT_BYTES:
        raise BadEvent("too_large", f"{len(raw)} bytes, the limit is {MAX_EVENT_BYTES}")
    try:
        doc = json.loads(raw or b"")
    except RecursionError as exc:
        raise BadEvent("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # bad JSON, bad UTF-8, an integer too long to parse
        raise BadEvent("undecodable", f"not JSON: {str(exc)[:300]}") from exc
    if _depth(doc) > MAX_DEPTH:
        raise BadEvent("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels")
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise BadEvent("undecodable", "not an event envelope (a JSON object with a 'type')")
    payload_cls = CATALOGUE.get(doc["type"])
    if payload_cls is None:
        raise BadEvent("unknown_type", f"no event type {doc['type']!r} in the catalogue")
    version = doc.get("schemaversion")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadEvent("invalid_payload", "schemaversion must be an integer")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise BadEvent("invalid_payload", "data must be a JSON object")
    try:
        doc["data"] = upcast(doc["type"], version, payload_cls.VERSION, data)
    except UnknownSchemaVersion as exc:
        raise BadEvent("unknown_schema_version", str(exc)) from exc
    doc["schemaversion"] = payload_cls.VERSION
    try:
        return envelope_of(payload_cls).model_validate(doc)
    except ValidationError as exc:
        raise BadEvent("invalid_payload", _brief(exc)) from exc


def _depth(doc: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (a recursive walk could itself overflow)."""
    if not isinstance(doc, dict | list):
        return 0
    deepest, stack = 1, [(doc, 1)]
    while stack:  # only containers are pushed: an event's scalars are most of its nodes
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _brief(exc: ValidationError) -> str:
    """One line per field error, e.g. "data.n: Input should be >= 0" (bounded in length)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
    )[:1000]


def payload_of(envelope: AnyEnvelope) -> Payload:
    """The typed payload (helps type checkers where the envelope is Envelope[Any])."""
    data: Payload = envelope.data
    return data
