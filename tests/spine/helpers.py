"""Small builders for spine tests."""

from __future__ import annotations

import json
from typing import Any

from events.codec import encode
from events.envelope import Envelope, make_envelope
from events.proof import Ping, Pong


def ping(rally: str, n: int = 0, limit: int = 3, cycle: int | None = None) -> Envelope[Ping]:
    return make_envelope(
        Ping(rally=rally, n=n, limit=limit), source="test", subject=rally,
        correlationid=None if cycle is None else f"cycle-{cycle}",
    )


def pong(rally: str, n: int, limit: int = 3, cycle: int | None = None) -> Envelope[Pong]:
    return make_envelope(
        Pong(rally=rally, n=n, limit=limit), source="test", subject=rally,
        correlationid=None if cycle is None else f"cycle-{cycle}",
    )


def bad_inputs() -> dict[str, bytes]:
    """One message of each dead-letter kind, keyed by the reason it must be filed under."""
    good = json.loads(encode(ping("bad")))
    return {
        "undecodable": b"\xff\xfe not json",
        "unknown_type": json.dumps({**good, "type": "Teleported"}).encode(),
        "invalid_payload": json.dumps({**good, "data": {"rally": "x", "n": -4}}).encode(),
        "unknown_schema_version": json.dumps({**good, "schemaversion": 99}).encode(),
    }


def rally_log(rallies: int, limit: int, cycles: int = 1) -> list[Envelope[Any]]:
    """A complete proof-flow log (what pinger and ponger would write), spread over cycles."""
    out: list[Envelope[Any]] = []
    for r in range(rallies):
        cycle = r % cycles
        for n in range(limit):
            out.append(ping(f"r{r}", n, limit, cycle))
            out.append(pong(f"r{r}", n, limit, cycle))
    return out
