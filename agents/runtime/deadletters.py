"""Decode a consumed message or dead-letter it, so one bad input never stops a consumer."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker

from events.codec import AnyEnvelope, BadEvent, decode
from events.deadletter import DeadLetter
from events.topology import dead_letter_of

log = logging.getLogger("sleepwake.deadletter")


async def decode_or_dead_letter(
    broker: KafkaBroker, consumer: str, body: bytes | None, record: Any
) -> AnyEnvelope | None:
    """The event, or None after publishing a DeadLetter with the reason and original bytes.

    `record` is the aiokafka ConsumerRecord (topic, partition, offset, key); FastStream's
    in-memory test broker provides the same attributes.
    """
    try:
        return decode(body)
    except BadEvent as err:
        key = record.key.decode(errors="replace") if isinstance(record.key, bytes) else None
        letter = DeadLetter.of(
            err, body, consumer=consumer, topic=record.topic, partition=record.partition or 0,
            offset=record.offset or 0, key=key,
        )
        await broker.publish(
            letter.model_dump_json().encode(), topic=dead_letter_of(record.topic),
            key=record.key if isinstance(record.key, bytes) else None,
        )
        log.warning(
            "%s dead-lettered %s[%s]@%s: %s", consumer, record.topic, record.partition,
            record.offset, err,
        )
        return None
