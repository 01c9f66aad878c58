"""Small builders for spine tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
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


def bad_inputs() -> list[tuple[str, bytes]]:
    """One message of each way a record can be bad, with the reason it must be filed under.

    All are sent on the pinger's topic (the ponger and the projector read it)."""
    good = json.loads(encode(ping("bad")))
    spoofed = json.loads(encode(pong("spoofed", 0)))  # a ponger event on the pinger's topic
    return [
        ("undecodable", b"\xff\xfe not json"),
        ("unknown_type", json.dumps({**good, "type": "Teleported"}).encode()),
        ("invalid_payload", json.dumps({**good, "data": {"rally": "x", "n": -4}}).encode()),
        ("unknown_schema_version", json.dumps({**good, "schemaversion": 99}).encode()),
        ("too_deep", b"[" * 10_000 + b"]" * 10_000),
        ("undecodable", b'{"type": "Ping", "schemaversion": ' + b"9" * 5_000 + b"}"),
        ("too_large", b"x" * 900_000),
        ("invalid_payload", json.dumps({**good, "data": {**good["data"], "n": 10**20}}).encode()),
        ("invalid_payload", json.dumps({**good, "correlationid": "cycle-99999999999"}).encode()),
        ("wrong_producer", json.dumps(spoofed).encode()),
    ]


def rally_log(rallies: int, limit: int, cycles: int = 1) -> list[Envelope[Any]]:
    """A complete proof-flow log (what pinger and ponger would write), spread over cycles."""
    out: list[Envelope[Any]] = []
    for r in range(rallies):
        cycle = r % cycles
        for n in range(limit):
            out.append(ping(f"r{r}", n, limit, cycle))
            out.append(pong(f"r{r}", n, limit, cycle))
    return out


class LogWatch:
    """Read agents' topics from the start as a run writes them; `seen` gets each event's
    payload (a subclass keeps what its test waits for)."""

    def __init__(self, bootstrap: str, *agents: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from events.topology import topic_of

        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                      auto_offset_reset="earliest", fetch_max_wait_ms=50)
        parts = [TopicPartition(topic_of(a), p) for a in agents
                 for p in sorted(self.consumer.partitions_for_topic(topic_of(a)) or ())]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*parts)

    def seen(self, data: Any) -> None:
        """Called with each payload read; a subclass keeps what its test waits for."""

    def poll(self) -> None:
        from events.codec import BadEvent, decode

        for records in self.consumer.poll(timeout_ms=200).values():
            for rec in records:
                try:
                    self.seen(decode(rec.value).data)
                except BadEvent:
                    continue

    async def until(self, done: Callable[[], bool], timeout: float = 300) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.to_thread(self.poll)
