"""Rebuild an agent's state from the log before it resumes consuming.

A restarted agent resumes at its group's committed offsets; everything before them was
already acted on, so it is folded through `evolve` only (no decide, nothing published).
Kafka has no order across partitions; policies must not depend on one
(docs/design.md, 'Time, order and replay').
"""

from __future__ import annotations

import logging
from typing import TypeVar

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from events.codec import BadEvent, decode
from events.topology import dead_letter_of
from runtime.bus import sync_client_kwargs
from runtime.deadletters import read_dead_letter
from runtime.policy import Policy
from runtime.positions import read_to_end, read_until
from runtime.seen import Seen

log = logging.getLogger("sleepwake.catchup")

S = TypeVar("S")


def committed_offsets(
    bootstrap: str, group: str, topics: tuple[str, ...]
) -> dict[TopicPartition, int]:
    """The group's committed offset per partition of `topics` (only those with one)."""
    admin = KafkaAdminClient(
        **sync_client_kwargs(), bootstrap_servers=bootstrap,
        client_id=f"{group}-catchup")
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
    bootstrap: str, group: str, topics: tuple[str, ...], policy: Policy[S], consumer: str,
    idle_ms: int = 2000,
) -> tuple[S, Seen]:
    """Fold every already-committed event of `topics`; returns the state and the seen ids.

    Events this consumer dead-lettered (its handler raised on them) were not folded live,
    so they are skipped here too: their positions are read from the dead-letter topics.
    Decoding applies the same trust rule as live consumption.
    """
    state = policy.initial
    seen = Seen()
    targets = committed_offsets(bootstrap, group, topics)
    if not targets:
        return state, seen
    rejected = _dead_lettered(bootstrap, topics, consumer)
    folded = 0
    for rec in read_until(bootstrap, targets, idle_ms, group):
        if (rec.topic, rec.partition, rec.offset) in rejected:
            continue
        try:
            event = decode(rec.value, topic=rec.topic)
        except BadEvent:
            continue  # it was dead-lettered when first consumed
        if event in seen:
            continue
        seen.add(event)
        try:
            state = policy.evolve(state, event)
            folded += 1
        except Exception:  # it was dead-lettered live as well (handler_error)
            log.warning("%s: fold of %s failed again; skipped as live", group, event.id)
    log.info("%s: caught up on %d events", group, folded)
    return state, seen


def _dead_lettered(bootstrap: str, topics: tuple[str, ...], consumer: str
                   ) -> set[tuple[str, int, int]]:
    """Positions (topic, partition, offset) of `topics` that `consumer` dead-lettered."""
    found: set[tuple[str, int, int]] = set()
    for rec in read_to_end(bootstrap, [dead_letter_of(t) for t in topics]):
        letter = read_dead_letter(rec.value, rec, "catch-up")
        if letter.consumer == consumer:
            found.add((letter.topic, letter.partition, letter.offset))
    return found
