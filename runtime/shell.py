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
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar, Union, cast

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI

from events.codec import BadEvent, encode
from events.deadletter import DeadLetter
from events.envelope import Envelope, derived_id, make_envelope
from events.topology import AGENTS, AgentSpec, all_topics
from runtime.admin import ensure_topics, refuse_second_instance
from runtime.bus import (
    bootstrap_from_env,
    make_broker,
    partitions_from_env,
    raw_producer,
    records_of,
    subscriber,
)
from runtime.catchup import catch_up
from runtime.deadletters import Record, dead_letter_message, decode_record, letter_for
from runtime.metrics import Meter, serve_metrics
from runtime.policy import AnyEnvelope, Deferred, Emit, Policy, built
from runtime.seen import Seen

S = TypeVar("S")

log = logging.getLogger("sleepwake.agent")

#: Tries of a handler that raises on one event before it is dead-lettered.
HANDLER_TRIES = 3

Outgoing = tuple[bytes, str, bytes | None]  # (body, topic, key)

#: Where deferred policies are built (models loaded): on a thread of their own, so the default
#: pool stays free for the admin and catch-up calls of the other agents, and one at a time,
#: in the order asked: on two cores the traffic source's embedder, built first, gets the
#: first query out soonest (the model core serialises model builds anyway).
LOADER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sleepwake-load")


def describe(emits: Sequence[Emit]) -> str:
    """A one-line account of a decision for the log."""
    if not emits:
        return "no action"
    return "; ".join(f"{e.data.TYPE}({e.subject}) {e.data.model_dump_json()}" for e in emits)


class Agent(Generic[S]):
    """One running agent: its broker, subscriber, publisher and in-memory state."""

    def __init__(
        self, name: str, policy: Policy[S] | Deferred[S], *, bootstrap: str | None = None,
        broker: KafkaBroker | None = None, instance: str | None = None,
    ) -> None:
        """`instance` names one of several differently-configured instances of an agent
        (a worker per member): each gets its own consumer group. A `Deferred` policy is
        built in `prepare`, off the event loop."""
        self.spec: AgentSpec = AGENTS[name]
        self.deferred = policy
        self.policy: Policy[S] = cast(Policy[S], None) if isinstance(policy, Deferred) else policy
        self.state: S = cast(S, None) if isinstance(policy, Deferred) else policy.initial
        #: Set once the state is rebuilt from the log: records that arrive before wait.
        self.ready = asyncio.Event()
        self._loading: asyncio.Future[Policy[S]] | None = None
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
        """Everything before consuming: `admit`, then `load` (`faststream run` calls it
        before the consumer starts; the in-process stack overlaps `load` with the join)."""
        await self.admit()
        await self.load()

    async def admit(self, topics: bool = True) -> None:
        """Create missing topics (unless `topics` is off: a stack made them for all its
        agents) and refuse to be a second instance of a global agent (so before this
        instance's consumer joins its group). Serves metrics if configured."""
        self.loading()
        serve_metrics()
        if topics:
            await asyncio.to_thread(ensure_topics, self.bootstrap, partitions_from_env(),
                                    all_topics())
        if self.spec.scaling == "global":
            await asyncio.to_thread(refuse_second_instance, self.bootstrap, self.group,
                                    self.spec.name)

    def loading(self) -> asyncio.Future[Policy[S]]:
        """Start building the policy on the loader thread (once; in the order asked)."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(
                LOADER, built, self.deferred)
        return self._loading

    async def load(self) -> None:
        """Build the policy, fold what the group already consumed (restart), and let the
        records waiting in `handle` through."""
        self.policy = await self.loading()
        self.state, self.seen = await asyncio.to_thread(
            catch_up, self.bootstrap, self.group, self.spec.input_topics, self.policy,
            self.id_source,
        )
        self.ready.set()

    def without_log(self) -> None:
        """Ready with the initial state: on the in-memory test broker there is no log to
        catch up from."""
        self.policy = built(self.deferred)
        self.state = self.policy.initial
        self.ready.set()

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
        producer = raw_producer(self.broker)
        for body, topic, key in out:
            if producer is not None:
                sent = await producer.send(topic, body, key=key)
            else:
                sent = await self.broker.publish(body, topic=topic, key=key, no_confirm=True)
            if isinstance(sent, asyncio.Future):
                pending.append(sent)
        if pending:
            await asyncio.gather(*pending)

    async def handle(self, bodies: list[bytes], msg: KafkaMessage) -> None:
        if not self.ready.is_set():  # the group joined while the policy was still loading
            await self.ready.wait()
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
                got = self.policy.react(self.state, event)
                self.meter.decided(event.type, time.perf_counter() - began)
                if self.policy.blocking:  # let heartbeats and the other agents run
                    await asyncio.sleep(0)
                return got
            except Exception as exc:
                log.warning("%s: handling %s %s failed (try %d of %d): %s", self.spec.name,
                            event.type, event.id, attempt, HANDLER_TRIES, exc)
                error = exc
        assert error is not None
        brief = "".join(traceback.format_exception_only(error)).strip()
        return BadEvent("handler_error", f"{self.id_source}: {brief}"[:1000])


def agent_app(name: str, policy: Policy[S] | Deferred[S]) -> Agent[S]:
    """The agent as configured by the environment ($SLEEPWAKE_BOOTSTRAP)."""
    return Agent(name, policy)
