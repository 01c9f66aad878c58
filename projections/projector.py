"""The projector: the one process that writes DuckDB, fed by FastStream batch subscribers.

Its consumer group is named after the database file's instance id, so a new file replays
the log from offset 0 while a restarted projector resumes where its file left off.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI

from events.codec import BadEvent
from events.deadletter import DeadLetter
from events.topology import all_topics, dead_letter_of, event_topics
from projections.rows import Position, row
from projections.store import Store
from runtime.admin import ensure_topics
from runtime.bus import (
    bootstrap_from_env,
    make_broker,
    partitions_from_env,
    records_of,
    subscriber,
)
from runtime.deadletters import (
    dead_letter_message,
    decode_record,
    letter_for,
    read_dead_letter,
)
from runtime.metrics import Meter, projected, projected_letters, serve_metrics

log = logging.getLogger("sleepwake.projector")

class Projector:
    def __init__(
        self, db: str | Path, *, bootstrap: str | None = None, broker: KafkaBroker | None = None,
        positions: bool = True, group: str | None = None, observer: bool = False,
    ) -> None:
        """`observer`: a read-only follower (the dashboard's own projection): it writes
        nothing to the log — no topics, no dead letters (the run's projector records them) —
        and serves no metrics."""
        self.store = Store(db)
        self.positions = positions  # False on the in-memory test broker, whose offsets are all 0
        self.bootstrap = bootstrap or bootstrap_from_env()
        self.broker = broker or make_broker(self.bootstrap, client_id="sleepwake-projector")
        self.lock = asyncio.Lock()
        # One subscriber, one group over the event and dead-letter topics: tansu takes half
        # a session timeout for each group to join, and a broker starts its subscribers one
        # after another, so a second group would hold up every run's start by that again.
        self.groups: tuple[str, ...] = (group or projector_group(self.store.instance),)
        self.letter_topics = frozenset(dead_letter_of(t) for t in event_topics())
        subscriber(
            self.broker, *event_topics(), *sorted(self.letter_topics), group_id=self.groups[0],
            title="projector:consume", batch=True,
        )(self.on_records)
        self.app = FastStream(
            self.broker,
            specification=AsyncAPI(self.broker, title="sleepwake projector"),
            on_startup=[self.prepare],
        )
        self.applied = 0
        self.dead_letters = 0
        self.meter = Meter("projector")  # its own rejections and lag (runtime.metrics)
        self.observer = observer

    async def prepare(self) -> None:
        if self.observer:
            return
        serve_metrics()
        await asyncio.to_thread(ensure_topics, self.bootstrap, partitions_from_env(), all_topics())

    async def on_records(self, bodies: list[bytes], msg: KafkaMessage) -> None:
        """A batch from any topic: events are projected, dead letters recorded."""
        records = list(zip(bodies, records_of(msg), strict=True))
        letters = [(b, r) for b, r in records if r.topic in self.letter_topics]
        events = [(b, r) for b, r in records if r.topic not in self.letter_topics]
        if events:
            await self.on_events(events)
        if letters:
            await self.on_dead_letters(letters)
        self.meter.lag(msg)

    async def on_events(self, records: Sequence[tuple[bytes, Any]]) -> None:
        """Project a batch in one transaction; a record that cannot be decoded, or whose
        rows the store rejects, is dead-lettered alone and the rest of the batch applies."""
        rows, out, kept, types = [], [], [], []
        for body, record in records:
            got = decode_record(body, record, "projector")
            if isinstance(got, DeadLetter):
                out.append(dead_letter_message(got))
                self.meter.rejected(got.reason)
            else:
                rows.append(row(got, self.position(record), body))
                kept.append((body, record))
                types.append(got.type)
        async with self.lock:
            try:
                applied = await asyncio.to_thread(self.store.apply, rows)
                projected(types, applied)
            except Exception:
                log.exception("a batch failed to project; projecting it record by record")
                applied = 0
                for one, (body, record), kind in zip(rows, kept, types, strict=True):
                    try:
                        one_applied = await asyncio.to_thread(self.store.apply, [one])
                        projected([kind], one_applied)
                        applied += one_applied
                    except Exception as exc:
                        err = BadEvent("handler_error", f"projector: {exc}"[:1000])
                        self.meter.rejected(err.reason)
                        out.append(dead_letter_message(letter_for(err, body, record,
                                                                  "projector")))
        for body, topic, key in out if not self.observer else ():
            await self.broker.publish(body, topic=topic, key=key)
        self.applied += applied
        log.debug("projected %d of %d events", applied, len(records))

    async def on_dead_letters(self, records: Sequence[tuple[bytes, Any]]) -> None:
        """Record dead letters; junk on a dead-letter topic is recorded as a letter itself."""
        letters = [(read_dead_letter(body, r, "projector"), self.position(r))
                   for body, r in records]
        async with self.lock:
            added = await asyncio.to_thread(self.store.apply_dead_letters, letters)
            self.dead_letters += added
        projected_letters((letter.reason for letter, _ in letters), added)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the projection (hold `lock` while a batch may be applied)."""
        rows: list[tuple[Any, ...]] = self.store.conn.execute(sql, list(params)).fetchall()
        return rows

    def close(self) -> None:
        self.store.close()

    def position(self, record: Any) -> Position:
        offset = record.offset if self.positions else None
        return Position(record.topic, record.partition or 0, offset)


def projector_group(instance: str) -> str:
    """The consumer group of the projector of the file with this instance id."""
    return f"sw-projector-{instance}"


def projector_on(db: str | Path, **kwargs: Any) -> Callable[[str, KafkaBroker | None], Projector]:
    """A factory the runtime's stack calls with (bootstrap, in-memory broker or None)."""
    def make(bootstrap: str, broker: KafkaBroker | None) -> Projector:
        return Projector(db, bootstrap=bootstrap, broker=broker, positions=broker is None,
                         **kwargs)
    return make


def default_db() -> str:
    return os.environ.get("SLEEPWAKE_DB", "sleepwake.duckdb")
