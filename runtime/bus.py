"""Kafka clients with the settings event sourcing needs (docs/design.md, 'The log').

FastStream's defaults are wrong for a log that is the source of truth: it acks before the
handler runs (at-most-once) and starts new groups at "latest". Every subscriber here acks
after processing (a failing handler is nacked and redelivered) and starts at "earliest".
The timing values are those measured against the embedded broker: a group join
takes half the session timeout, and a waiting fetch is not answered early.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage

from events.codec import encode
from events.envelope import Envelope
from events.topology import producer_of
from runtime.security import faststream_kwargs, kafka_python_kwargs, security_from_env

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def bootstrap_from_env() -> str:
    return os.environ.get("SLEEPWAKE_BOOTSTRAP", DEFAULT_BOOTSTRAP)


def partitions_from_env() -> int:
    raw = os.environ.get("SLEEPWAKE_PARTITIONS", "3")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"SLEEPWAKE_PARTITIONS must be a positive integer, got {raw!r}")
    return int(raw)


SESSION_TIMEOUT_MS = 6000
FETCH_MAX_WAIT_MS = 20


def subscriber(
    broker: KafkaBroker, *topics: str, group_id: str, title: str, description: str | None = None,
    batch: bool = False,
) -> Any:
    """A subscriber that acks after processing, nacks on error and starts at "earliest"."""
    return broker.subscriber(
        *topics, group_id=group_id, title=title, description=description,
        batch=batch, max_records=2000 if batch else None, batch_timeout_ms=50,
        auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=SESSION_TIMEOUT_MS // 4,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS, max_poll_interval_ms=300_000,
    )


def records_of(msg: Any) -> tuple[Any, ...]:
    """The consumer records behind a FastStream message (one, or a batch's list)."""
    raw = msg.raw_message
    return tuple(raw) if isinstance(raw, list | tuple) else (raw,)


async def raw_body(msg: StreamMessage[Any]) -> bytes:
    """FastStream decoder that hands the handler the bytes: our codec decodes (and dead-letters)."""
    body: bytes = msg.body
    return body


def sync_client_kwargs() -> dict[str, Any]:
    """Security settings for kafka-python clients (admin, catch-up, replay), from the same
    environment as every other client (runtime.security)."""
    return kafka_python_kwargs(security_from_env())


def raw_producer(broker: KafkaBroker) -> Any | None:
    """The started aiokafka producer under a FastStream broker, or None (the in-memory test
    broker, or a FastStream whose internals moved). Sending on it skips FastStream's publish
    path (middlewares, a random correlation header per record), which costs more than the
    send itself in an agent's hot loop; the bytes and keys are the same."""
    state = getattr(getattr(broker.config, "producer", None), "_producer", None)
    producer = getattr(state, "producer", None)
    return producer if isinstance(producer, AIOKafkaProducer) else None


def make_broker(bootstrap: str | None = None, **kwargs: Any) -> KafkaBroker:
    """A FastStream broker; the aiokafka idempotent producer is off (unsupported by tansu)."""
    if bootstrap != "memory":
        kwargs.update(faststream_kwargs(security_from_env()))
    return KafkaBroker(
        bootstrap or bootstrap_from_env(),
        enable_idempotence=False,
        linger_ms=kwargs.pop("linger_ms", 1),
        decoder=raw_body,
        log_level=kwargs.pop("log_level", logging.DEBUG),  # per-message lines are debug detail
        logger=logging.getLogger("sleepwake.faststream"),
        **kwargs,
    )


async def publish_event(broker: KafkaBroker, event: Envelope[Any]) -> None:
    """Publish an event on its producer's topic (events.topology), keyed by subject."""
    topic = producer_of(type(event.data)).topic
    await broker.publish(encode(event), topic=topic, key=event.subject.encode())
