"""Where the log ends and where each consumer group stands: what a stopped run needs to
continue on another broker (`sleepwake run --resume`).

A run on the embedded broker keeps its log in memory; what survives the process is the
projection's archive. To continue, the log is written back into an empty broker at the
same offsets (so every position the archive, the dead letters and the groups name still
points at the same record) and each group's committed offsets are set as they were when
the run stopped. Each agent then starts as after any restart: it folds what it had
consumed and goes on from there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.structs import OffsetAndMetadata

from runtime.bus import FETCH_MAX_WAIT_MS, sync_client_kwargs

log = logging.getLogger("sleepwake.positions")

#: (topic, partition) → offset: the next offset to read (a group's) or to write (a log end).
Offsets = dict[tuple[str, int], int]


class RestoreError(RuntimeError):
    """The log could not be written back as it was; the message says why."""


@dataclass(frozen=True)
class LogRecord:
    """One record to write back at its original position (None: where the broker puts it)."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes


def _admin(bootstrap: str, what: str) -> KafkaAdminClient:
    return KafkaAdminClient(**sync_client_kwargs(), bootstrap_servers=bootstrap,
                            client_id=f"sleepwake-{what}")


def _reader(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(**sync_client_kwargs(), bootstrap_servers=bootstrap, group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         fetch_max_wait_ms=FETCH_MAX_WAIT_MS, max_poll_records=5000)


def end_offsets(bootstrap: str, topics: Iterable[str], idle_ms: int = 2000) -> Offsets:
    """The end (next offset to be written) of every partition of `topics` that exists.

    tansu answers ListOffsets(latest) with the last batch's base offset + 1, not the end,
    so the end is read: one fetch from one before the reported end returns that last batch
    whole (on Kafka, the one last record). No idle wait: `idle_ms` only bounds a fetch."""
    admin = _admin(bootstrap, "log-end")
    try:
        described = admin.describe_topics(list(topics))
        parts = [TopicPartition(t["name"], p["partition_index"]) for t in described
                 if not t.get("error_code") for p in t["partitions"]]
        reported = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in parts})
    finally:
        admin.close()
    ends = {tp: int(info.offset) for tp, info in reported.items()}
    pending = {tp for tp, end in ends.items() if end > 0}
    if pending:
        reader = _reader(bootstrap)
        try:
            reader.assign(list(pending))
            for tp in pending:
                reader.seek(tp, ends[tp] - 1)
            while pending and (batches := reader.poll(timeout_ms=idle_ms)):
                for tp, records in batches.items():
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
                    pending.discard(tp)
            while batches := reader.poll(timeout_ms=0):  # the rest of a batch, if split
                for tp, records in batches.items():
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
        finally:
            reader.close()
    return {(tp.topic, tp.partition): end for tp, end in ends.items()}


def read_to_end(bootstrap: str, topics: Iterable[str], idle_ms: int = 2000) -> Iterator[Any]:
    """Every record of `topics` from offset 0 to the end as it is now (no idle wait)."""
    ends = {TopicPartition(t, p): end for (t, p), end in end_offsets(bootstrap, topics).items()
            if end > 0}
    yield from read_until(bootstrap, ends, idle_ms, "reading to the end")


def read_until(bootstrap: str, ends: dict[TopicPartition, int], idle_ms: int = 2000,
               what: str = "log") -> Iterator[Any]:
    """The records of each partition from offset 0 below its end in `ends`, partition by
    partition as fetched; it stops once every partition reached its end, or (with a
    warning) if the log stays idle for `idle_ms` before that."""
    pending = {tp: end for tp, end in ends.items() if end > 0}
    if not pending:
        return
    reader = _reader(bootstrap)
    try:
        reader.assign(list(pending))
        reader.seek_to_beginning(*pending)
        while pending:
            batches = reader.poll(timeout_ms=idle_ms)
            if not batches:
                log.warning("%s: the log ended before offsets %s", what, pending)
                return
            for tp, records in batches.items():
                end = pending.get(tp)
                if end is None:
                    continue
                yield from (rec for rec in records if rec.offset < end)
                if records[-1].offset + 1 >= end:
                    del pending[tp]
                    reader.pause(tp)
    finally:
        reader.close()


def group_positions(bootstrap: str, groups: Iterable[str] | None = None) -> dict[str, Offsets]:
    """The committed offsets of `groups` (default: every group of ours, named sw-…)."""
    admin = _admin(bootstrap, "positions")
    try:
        names = sorted(groups if groups is not None else (
            g["group_id"] for g in admin.list_groups() if g["group_id"].startswith("sw-")))
        return {
            group: {(tp.topic, tp.partition): int(meta.offset)
                    for tp, meta in admin.list_group_offsets(group).get(group, {}).items()
                    if meta.offset is not None and meta.offset >= 0}
            for group in names
        }
    finally:
        admin.close()


def set_group_positions(bootstrap: str, positions: dict[str, Offsets]) -> None:
    """Commit each group's offsets (the groups must have no live member)."""
    admin = _admin(bootstrap, "positions")
    try:
        for group, offsets in positions.items():
            if not offsets:
                continue
            errors = admin.alter_group_offsets(group, {
                TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                for (t, p), o in offsets.items()})
            failed = {tp: e for tp, e in errors.items() if e.__name__ != "NoError"}
            if failed:
                raise RestoreError(f"could not set the offsets of group {group}: {failed}")
    finally:
        admin.close()


def write_back(bootstrap: str, records: Iterable[LogRecord]) -> int:
    """Write `records` (in offset order per partition, no gaps, starting at 0) into empty
    partitions and check that each lands at its original offset; returns how many."""
    producer = KafkaProducer(**sync_client_kwargs(), bootstrap_servers=bootstrap, acks="all",
                             linger_ms=5, max_in_flight_requests_per_connection=1,
                             client_id="sleepwake-restore")
    sent = []
    try:
        for rec in records:
            sent.append((rec, producer.send(rec.topic, rec.value, key=rec.key,
                                            partition=rec.partition)))
        producer.flush()
        for rec, future in sent:
            got = future.get(timeout=30)
            if rec.offset is not None and got.offset != rec.offset:
                raise RestoreError(
                    f"{rec.topic}[{rec.partition}]: a record meant for offset {rec.offset} "
                    f"landed at {got.offset}; resume needs an empty broker (a fresh embedded "
                    "one, or topics deleted first)")
    finally:
        producer.close()
    log.info("wrote %d records back into the log", len(sent))
    return len(sent)
