"""Rebuild an agent's state from the log before it resumes consuming.

A restarted agent resumes at its group's committed offsets; everything before them was
already acted on, so it is folded through `evolve` only (no decide, nothing published).
Kafka has no order across partitions; policies must not depend on one (DESIGN §4).
"""

from __future__ import annotations

import logging
from typing import TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from agents.runtime.bus import FETCH_MAX_WAIT_MS
from agents.runtime.policy import Policy
from events.codec import BadEvent, decode

log = logging.getLogger("sleepwake.catchup")

S = TypeVar("S")


def committed_offsets(
    bootstrap: str, group: str, topics: tuple[str, ...]
) -> dict[TopicPartition, int]:
    """The group's committed offset per partition of `topics` (only those with one)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{group}-catchup")
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {
        TopicPartition(tp.topic, tp.partition): meta.offset
        for tp, meta in offsets.items()
        if tp.topic in topics and meta.offset is not None and meta.offset > 0
    }


def catch_up(
    bootstrap: str, group: str, topics: tuple[str, ...], policy: Policy[S], idle_ms: int = 2000
) -> tuple[S, set[str]]:
    """Fold every already-committed event of `topics`; returns the state and the seen ids."""
    state = policy.initial
    seen: set[str] = set()
    targets = committed_offsets(bootstrap, group, topics)
    if not targets:
        return state, seen
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    try:
        consumer.assign(list(targets))
        consumer.seek_to_beginning(*targets)
        pending = dict(targets)
        while pending:
            batches = consumer.poll(timeout_ms=idle_ms)
            if not batches:
                log.warning("%s: log ended before committed offsets %s", group, pending)
                break
            for tp, records in batches.items():
                for rec in records:
                    if tp not in pending or rec.offset >= pending[tp]:
                        continue
                    try:
                        event = decode(rec.value)
                    except BadEvent:
                        continue  # it was dead-lettered when first consumed
                    if str(event.id) not in seen:
                        seen.add(str(event.id))
                        state = policy.evolve(state, event)
                    if rec.offset + 1 >= pending[tp]:
                        del pending[tp]
        log.info("%s: caught up on %d events", group, len(seen))
        return state, seen
    finally:
        consumer.close()
