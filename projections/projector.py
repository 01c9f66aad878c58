"""The projector: the one process that writes DuckDB, fed by FastStream batch subscribers.

Its consumer group is named after the database file's instance id, so a new file replays
the log from offset 0 while a restarted projector resumes where its file left off.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI

from agents.runtime.admin import ensure_topics
from agents.runtime.bus import (
    bootstrap_from_env,
    make_broker,
    partitions_from_env,
    subscriber,
)
from agents.runtime.deadletters import decode_or_dead_letter
from events.deadletter import DeadLetter
from events.topology import all_topics, dead_letter_of, event_topics
from projections.rows import Position, row
from projections.store import Store

log = logging.getLogger("sleepwake.projector")

class Projector:
    def __init__(
        self, db: str | Path, *, bootstrap: str | None = None, broker: KafkaBroker | None = None,
        positions: bool = True, group: str | None = None,
    ) -> None:
        self.store = Store(db)
        self.positions = positions  # False on the in-memory test broker, whose offsets are all 0
        self.bootstrap = bootstrap or bootstrap_from_env()
        self.broker = broker or make_broker(self.bootstrap, client_id="sleepwake-projector")
        self.lock = asyncio.Lock()
        group = group or f"sw-projector-{self.store.instance}"
        subscriber(
            self.broker, *event_topics(), group_id=group, title="projector:events", batch=True
        )(self.on_events)
        subscriber(
            self.broker, *(dead_letter_of(t) for t in event_topics()), group_id=f"{group}-dlq",
            title="projector:dead-letters", batch=True,
        )(self.on_dead_letters)
        self.app = FastStream(
            self.broker,
            specification=AsyncAPI(self.broker, title="sleepwake projector"),
            on_startup=[self.prepare],
        )
        self.applied = 0
        self.dead_letters = 0

    async def prepare(self) -> None:
        await asyncio.to_thread(ensure_topics, self.bootstrap, partitions_from_env(), all_topics())

    async def on_events(self, bodies: list[bytes], msg: KafkaMessage) -> None:
        rows = []
        for body, record in zip(bodies, _records(msg), strict=True):
            event = await decode_or_dead_letter(self.broker, "projector", body, record)
            if event is not None:
                rows.append(row(event, self.position(record), body))
        async with self.lock:
            applied = await asyncio.to_thread(self.store.apply, rows)
        self.applied += applied
        log.debug("projected %d of %d events", applied, len(bodies))

    async def on_dead_letters(self, bodies: list[bytes], msg: KafkaMessage) -> None:
        letters = [
            (DeadLetter.model_validate_json(body), self.position(r))
            for body, r in zip(bodies, _records(msg), strict=True)
        ]
        async with self.lock:
            self.dead_letters += await asyncio.to_thread(self.store.apply_dead_letters, letters)


    def position(self, record: Any) -> Position:
        offset = record.offset if self.positions else None
        return Position(record.topic, record.partition or 0, offset)


def _records(msg: KafkaMessage) -> tuple[object, ...]:
    raw = msg.raw_message
    return tuple(raw) if isinstance(raw, list | tuple) else (raw,)


def default_db() -> str:
    return os.environ.get("SLEEPWAKE_DB", "sleepwake.duckdb")
