"""The thin FastStream shell around a pure policy: decode, dedupe, decide, publish, ack.

Each agent module is `app = agent_app("name", POLICY).app`; `faststream run agents.name:app`
runs it. The topics it reads and writes come from events.topology, never from the agent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Generic, TypeVar, Union

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
from agents.runtime.catchup import catch_up
from agents.runtime.deadletters import decode_or_dead_letter
from agents.runtime.policy import AnyEnvelope, Emit, Policy
from events.codec import encode
from events.envelope import Envelope, derived_id, make_envelope
from events.topology import AGENTS, AgentSpec, all_topics

S = TypeVar("S")

log = logging.getLogger("sleepwake.agent")


def describe(emits: list[Emit]) -> str:
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
        self.seen: set[str] = set()
        self.handled = 0  # events this instance decided on (observability, tests)
        self.source = f"{name}/{instance or os.environ.get('HOSTNAME', 'local')}-{os.getpid()}"
        self.group = f"sw-{name}" + (f"-{instance}" if instance else "")
        self.id_source = name + (f"/{instance}" if instance else "")  # derived ids key
        self.bootstrap = bootstrap or bootstrap_from_env()
        self.broker = broker or make_broker(self.bootstrap, client_id=f"sleepwake-{name}")
        produced: Any = Union[tuple(Envelope[p] for p in self.spec.produces)]  # type: ignore[valid-type]  # noqa: UP007
        self.publisher = self.broker.publisher(
            self.spec.topic, title=f"{self.spec.topic}:publish", description=self.spec.summary,
            schema=produced,
        )
        subscriber(
            self.broker, *self.spec.input_topics, group_id=self.group, title=f"{name}:consume",
            description=f"{name} reads {', '.join(self.spec.consumes)}",
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
        """Create missing topics, then fold what the group already consumed (restart)."""
        await asyncio.to_thread(ensure_topics, self.bootstrap, partitions_from_env(), all_topics())
        self.state, self.seen = await asyncio.to_thread(
            catch_up, self.bootstrap, self.group, self.spec.input_topics, self.policy
        )

    async def kickoff(self) -> None:
        """Publish what the policy emits on its own (ids keyed by what they are: idempotent)."""
        for emit in self.policy.start(self.state):
            cause = f"start:{emit.data.TYPE}:{emit.subject}"
            await self.publish(emit, derived_id(self.id_source, cause), cause=None)

    async def publish(self, emit: Emit, id: Any, cause: AnyEnvelope | None) -> None:
        out = make_envelope(emit.data, source=self.source, subject=emit.subject, cause=cause,
                            id=id, correlationid=emit.correlationid)
        await self.publisher.publish(encode(out), key=emit.subject.encode())

    async def handle(self, body: bytes, msg: KafkaMessage) -> None:
        event = await decode_or_dead_letter(self.broker, self.spec.name, body, msg.raw_message)
        if event is None or str(event.id) in self.seen:
            return
        await self.react(event)

    async def react(self, event: AnyEnvelope) -> None:
        """Decide, fold, then publish with ids derived from the cause (the ack follows).

        The fold comes before the publishing so that an event delivered *during* it (the
        in-memory test broker calls handlers re-entrantly) sees, and keeps, this event's
        effect. If publishing fails the fold is undone and the event is nacked, so its
        redelivery is decided afresh; on a real broker one subscriber handles one event at
        a time, so nothing else was folded meanwhile.
        """
        before = self.state
        if self.policy.blocking:
            emits = list(await asyncio.to_thread(self.policy.decide, before, event))
        else:
            emits = list(self.policy.decide(before, event))
        self.state = self.policy.evolve(before, event)
        self.seen.add(str(event.id))
        try:
            for index, emit in enumerate(emits):
                await self.publish(emit, emit.event_id(self.id_source, event.id, index),
                                   cause=event)
        except BaseException:
            self.state = before
            self.seen.discard(str(event.id))
            raise
        self.handled += 1
        log.info("%s on %s %s: %s", self.spec.name, event.type, event.subject, describe(emits))


def agent_app(name: str, policy: Policy[S]) -> Agent[S]:
    """The agent as configured by the environment ($SLEEPWAKE_BOOTSTRAP)."""
    return Agent(name, policy)
