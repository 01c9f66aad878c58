"""Bytes <-> envelopes, and the four ways an input can be bad (DESIGN §5).

`decode` never lets a malformed message pass silently: it raises `BadEvent` with a reason
code, which the agent shell turns into a dead letter.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ValidationError

from events.catalogue import CATALOGUE
from events.envelope import Envelope, Payload
from events.upcasting import UnknownSchemaVersion, upcast

Reason = Literal["undecodable", "unknown_type", "invalid_payload", "unknown_schema_version"]

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


def decode(raw: bytes | None) -> AnyEnvelope:
    """Parse, upcast and validate one message; raise BadEvent saying what is wrong."""
    try:
        doc = json.loads(raw or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvent("undecodable", f"not JSON: {exc}") from exc
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
        return Envelope[payload_cls].model_validate(doc)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise BadEvent("invalid_payload", _brief(exc)) from exc


def _brief(exc: ValidationError) -> str:
    """One line per field error, e.g. "data.n: Input should be >= 0"."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def payload_of(envelope: AnyEnvelope) -> Payload:
    """The typed payload (helps type checkers where the envelope is Envelope[Any])."""
    data: Payload = envelope.data
    return data
