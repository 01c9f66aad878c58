"""Turn a record that cannot be handled into a dead letter, so no record stalls a partition.

Every failure path ends here: a record that does not decode (any reason `events.codec`
gives, the trust rule included) and an event whose handling raised after bounded retries.
The dead letter goes to the dead-letter topic of the topic the record was read from; its
original bytes are truncated when large (with size and hash), so it always fits.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from events.codec import AnyEnvelope, BadEvent, decode
from events.deadletter import DeadLetter
from events.topology import dead_letter_of

log = logging.getLogger("sleepwake.deadletter")


class Record(Protocol):
    """What a consumed record offers (aiokafka's ConsumerRecord, FastStream's test record)."""

    topic: str
    partition: int
    offset: int
    key: Any


def letter_for(err: BadEvent, body: bytes | None, record: Record, consumer: str) -> DeadLetter:
    key = record.key.decode(errors="replace") if isinstance(record.key, bytes) else None
    return DeadLetter.of(err, body, consumer=consumer, topic=record.topic,
                         partition=record.partition or 0, offset=record.offset or 0, key=key)


def decode_record(body: bytes | None, record: Record, consumer: str
                  ) -> AnyEnvelope | DeadLetter:
    """The event, or the dead letter that says why there is none (trust rule included)."""
    try:
        return decode(body, topic=record.topic)
    except BadEvent as err:
        log.warning("%s rejects %s[%s]@%s: %s", consumer, record.topic, record.partition,
                    record.offset, err)
        return letter_for(err, body, record, consumer)


def dead_letter_message(letter: DeadLetter) -> tuple[bytes, str, bytes | None]:
    """(body, topic, key) of the dead letter's own record."""
    key = letter.key.encode() if letter.key is not None else None
    return letter.model_dump_json().encode(), dead_letter_of(letter.topic), key


def read_dead_letter(body: bytes | None, record: Record, consumer: str) -> DeadLetter:
    """A record of a dead-letter topic; junk written there becomes a dead letter of its own
    (reason `undecodable`, topic = the dead-letter topic) instead of stopping the reader."""
    try:
        return DeadLetter.model_validate_json(body or b"")
    except Exception as exc:  # any junk: counted and skipped, never fatal
        err = BadEvent("undecodable", f"not a dead letter: {type(exc).__name__}")
        return letter_for(err, body, record, consumer)
