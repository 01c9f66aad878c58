"""The thin FastStream shell around a pure policy: decode, dedupe, decide, publish, ack.

Each agent module is `app = agent_app("name", POLICY).app`; `faststream run agents.name:app`
runs it. The topics it reads and writes come from events.topology, never from the agent.

Records arrive in batches. Each is decoded (a bad one becomes a dead letter), deduped by
event id, decided and folded; everything the batch produced — events and dead letters — is
published without waiting record by record, confirmed once, and only then is the batch
committed (at-least-once: a failure before the commit redelivers the batch, whose events
are re-decided into the same derived ids). No record can stall a partition: a handler that
raises on an event is retried a bounded number of times, then the event is dead-lettered
(`handler_error`) and not folded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import traceback
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, Union

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI

from events.codec import BadEvent, encode
from events.deadletter import DeadLetter
from events.envelope import Envelope, derived_id, make_envelope
from events.topology import AGENTS, AgentSpec, all_topics
from runtime.admin import ensure_topics, refuse_second_instance
from runtime.bus import bootstrap_from_env, make_broker, partitions_from_env, records_of, subscriber
from runtime.catchup import catch_up
from runtime.deadletters import Record, dead_letter_message, decode_record, letter_for
from runtime.metrics import Meter, serve_metrics
from runtime.policy import AnyEnvelope, Emit, Policy
from runtime.seen import Seen

S = TypeVar("S")

log = logging.getLogger("sleepwake.agent")

#: Tries of a handler that raises on one event before it is dead-lettered.
HANDLER_TRIES = 3

Outgoing = tuple[bytes, str, bytes | None]  # (body, topic, key)


def describe(emits: Sequence[Emit]) -> str:
    """A one-line account of a decision for the log."""
    if not emits:
        return "no action"
    return "; ".join(f"{e.data.TYPE}({e.subject}) {e.data.model_dump_json()}" for e in emits)


class Agent(Generic[S]):
    """One running agent: its broker, subscriber, publisher and in-memory state."""

    def __init__(
        self, name: str, policy: Policy[S], *, bootstrap: str | None = None,
        broker: KafkaBroker | None = None, instance: str | None = None,
    ) -> None:
        """`instance` names one of several differently-configured instances of an agent
        (a worker per member): each gets its own consumer group."""
        self.spec: AgentSpec = AGENTS[name]
        self.policy = policy
        self.state: S = policy.initial
        self.seen = Seen()
        self.handled = 0  # events this instance decided on (observability, tests)
        self.duplicates = 0
        self.dead_letters = 0
        self.source = f"{name}/{instance or os.environ.get('HOSTNAME', 'local')}-{os.getpid()}"
        self.group = f"sw-{name}" + (f"-{instance}" if instance else "")
        self.id_source = name + (f"/{instance}" if instance else "")  # derived ids key
        self.meter = Meter(self.id_source)  # Prometheus metrics (runtime.metrics)
        self.bootstrap = bootstrap or bootstrap_from_env()
        self.broker = broker or make_broker(self.bootstrap, client_id=f"sleepwake-{name}")
        produced: Any = Union[tuple(Envelope[p] for p in self.spec.produces)]  # type: ignore[valid-type]  # noqa: UP007
        self.publisher = self.broker.publisher(
            self.spec.topic, title=f"{self.spec.topic}:publish", description=self.spec.summary,
            schema=produced,
        )
        subscriber(
            self.broker, *self.spec.input_topics, group_id=self.group, title=f"{name}:consume",
            description=f"{name} reads {', '.join(self.spec.consumes)}", batch=True,
        )(self.handle)
        self.app = FastStream(
            self.broker,
            specification=AsyncAPI(
                self.broker, title=f"sleepwake {name}", description=self.spec.summary
            ),
        )
        self.app.on_startup(self.prepare)
        self.app.after_startup(self.kickoff)

    async def prepare(self) -> None:
        """Create missing topics, refuse to be a second instance of a global agent, then
        fold what the group already consumed (restart). Serves metrics if configured."""
        serve_metrics()
        await asyncio.to_thread(ensure_topics, self.bootstrap, partitions_from_env(), all_topics())
        if self.spec.scaling == "global":
            await asyncio.to_thread(refuse_second_instance, self.bootstrap, self.group,
                                    self.spec.name)
        self.state, self.seen = await asyncio.to_thread(
            catch_up, self.bootstrap, self.group, self.spec.input_topics, self.policy,
            self.id_source,
        )

    async def kickoff(self) -> None:
        """Publish what the policy emits on its own (ids keyed by what they are: idempotent)."""
        out = []
        for emit in self.policy.start(self.state):
            cause = f"start:{emit.data.TYPE}:{emit.subject}"
            out.append(self.outgoing(emit, derived_id(self.id_source, cause), None))
        await self.send(out)

    def outgoing(self, emit: Emit, id: Any, cause: AnyEnvelope | None) -> Outgoing:
        out = make_envelope(emit.data, source=self.source, subject=emit.subject, cause=cause,
                            id=id, correlationid=emit.correlationid)
        return encode(out), self.spec.topic, emit.subject.encode()

    async def send(self, out: Sequence[Outgoing]) -> None:
        """Publish everything without waiting record by record, then wait for all of it."""
        pending = []
        for body, topic, key in out:
            sent = await self.broker.publish(body, topic=topic, key=key, no_confirm=True)
            if isinstance(sent, asyncio.Future):
                pending.append(sent)
        if pending:
            await asyncio.gather(*pending)

    async def handle(self, bodies: list[bytes], msg: KafkaMessage) -> None:
        await self.handle_records(list(zip(bodies, records_of(msg), strict=True)))
        self.meter.lag(msg)

    async def handle_records(self, batch: Sequence[tuple[bytes, Record]]) -> None:
        """Decide and fold a batch, publish its output, and only then return (the ack).

        The fold comes before the publishing so that an event delivered *during* it (the
        in-memory test broker calls handlers re-entrantly) sees this batch's effect. If
        publishing fails, the folds are undone and the batch is nacked, so its redelivery
        is decided afresh; on a real broker a subscriber handles one batch at a time.
        """
        before, added = self.state, []
        out: list[Outgoing] = []
        events: list[tuple[AnyEnvelope, Record, bytes]] = []
        for body, record in batch:
            got = decode_record(body, record, self.id_source)
            if isinstance(got, DeadLetter):
                out.append(self.rejected(got))
            elif got in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(got)
                added.append(got)
                events.append((got, record, body))
        try:
            for event, record, body in events:
                result = await self.decide_one(event)
                if isinstance(result, BadEvent):
                    out.append(self.rejected(letter_for(result, body, record, self.id_source)))
                    continue
                emits, self.state = result
                out += [self.outgoing(emit, emit.event_id(self.id_source, event.id, i), event)
                        for i, emit in enumerate(emits)]
                self.handled += 1
                if log.isEnabledFor(logging.INFO):  # describing costs a JSON dump per emit
                    log.info("%s on %s %s: %s", self.spec.name, event.type, event.subject,
                             describe(emits))
            await self.send(out)
        except BaseException:
            self.state = before
            for event in added:
                self.seen.discard(event)
            raise

    def rejected(self, letter: DeadLetter) -> Outgoing:
        self.dead_letters += 1
        self.meter.rejected(letter.reason)
        return dead_letter_message(letter)

    async def decide_one(self, event: AnyEnvelope) -> tuple[Sequence[Emit], S] | BadEvent:
        """The decision and the folded state, or a BadEvent after HANDLER_TRIES failures:
        an event whose decision or fold raises is dead-lettered, never half-applied."""
        error: Exception | None = None
        for attempt in range(1, HANDLER_TRIES + 1):
            try:
                began = time.perf_counter()
                if self.policy.blocking:
                    got = await asyncio.to_thread(self.policy.react, self.state, event)
                else:
                    got = self.policy.react(self.state, event)
                self.meter.decided(event.type, time.perf_counter() - began)
                return got
            except Exception as exc:
                log.warning("%s: handling %s %s failed (try %d of %d): %s", self.spec.name,
                            event.type, event.id, attempt, HANDLER_TRIES, exc)
                error = exc
        assert error is not None
        brief = "".join(traceback.format_exception_only(error)).strip()
        return BadEvent("handler_error", f"{self.id_source}: {brief}"[:1000])


def agent_app(name: str, policy: Policy[S]) -> Agent[S]:
    """The agent as configured by the environment ($SLEEPWAKE_BOOTSTRAP)."""
    return Agent(name, policy)
