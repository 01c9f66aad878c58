"""Run several agents and the projector in one process: the main job and the tests.

In production each runs as its own process (`faststream run agents.<name>:app`); here they
share an event loop but still talk only through the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faststream.kafka import KafkaBroker, TestKafkaBroker

from events.topology import all_topics
from runtime.admin import ensure_topics
from runtime.bus import make_broker
from runtime.policy import Deferred, Policy, built
from runtime.positions import end_offsets, group_positions
from runtime.shell import Agent

log = logging.getLogger("sleepwake.stack")


class Follower(Protocol):
    """What the stack needs of a projection that follows the log (projections.Projector):
    the runtime knows no table, only that it can be prepared, counted, read and closed."""

    broker: KafkaBroker
    applied: int
    lock: asyncio.Lock
    #: Its consumer groups: how far it has read is what they committed.
    groups: tuple[str, ...]

    async def prepare(self) -> None: ...

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll a count barrier (never a clock-ordered one) until it holds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError as exc:
        raise TimeoutError(f"gave up after {timeout}s waiting for {what}") from exc


#: Builds a follower on (bootstrap, shared in-memory broker or None).
FollowerFactory = Callable[[str, KafkaBroker | None], Follower]


@dataclass(frozen=True)
class Part:
    """One agent instance to run: its name in the topology, its policy, its instance name."""

    name: str
    policy: Policy[Any] | Deferred[Any]
    instance: str | None = None
    #: Builds the agent (same arguments as `Agent`) when it needs more than the shell.
    build: Callable[..., Agent[Any]] | None = None

    def agent(self, **kwargs: Any) -> Agent[Any]:
        return (self.build or Agent)(self.name, self.policy, instance=self.instance, **kwargs)

    def built(self) -> Policy[Any]:
        """The policy, built now if it is deferred."""
        return built(self.policy)

    @property
    def key(self) -> str:
        return self.name + (f"/{self.instance}" if self.instance else "")


@dataclass
class Stack:
    agents: dict[str, Agent[Any]]
    projector: Follower | None
    brokers: list[KafkaBroker] = field(default_factory=list)
    bootstrap: str | None = None  # None on the in-memory test broker
    stopped: set[int] = field(default_factory=set)  # id() of brokers already stopped

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
    ) -> None:
        await wait_until(predicate, timeout, what)

    def projected(self) -> int:
        return self.projector.applied if self.projector else 0

    async def settle(self, quiet: float = 1.0, timeout: float = 60.0) -> int:
        """Wait until the projector has applied nothing new for `quiet` seconds."""
        assert self.projector is not None, "this stack runs no projector"
        async with asyncio.timeout(timeout):
            while True:
                before = self.projector.applied
                await asyncio.sleep(quiet)
                if self.projector.applied == before:
                    return before

    async def stop_agents(self) -> None:
        """Stop every agent (their last batches committed or left for redelivery); the
        follower keeps reading."""
        for broker in reversed(self.brokers):
            if self.projector is None or broker is not self.projector.broker:
                await self._stop(broker)

    async def drain(self, timeout: float = 30.0) -> bool:
        """After `stop_agents`: wait until the follower has read every record in the log
        (its groups' committed offsets reach each partition's end). False if it did not
        within `timeout`: then the projection lacks part of the log."""
        if self.projector is None or self.bootstrap is None:
            return False
        bootstrap, groups = self.bootstrap, self.projector.groups
        ends = await asyncio.to_thread(end_offsets, bootstrap, all_topics())

        def read_all() -> bool:
            read: dict[tuple[str, int], int] = {}
            for offsets in group_positions(bootstrap, groups).values():
                read |= offsets
            return all(read.get(tp, 0) >= end for tp, end in ends.items() if end > 0)

        deadline = asyncio.get_running_loop().time() + timeout
        while not await asyncio.to_thread(read_all):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("the projector did not read the log to its end within %.0fs: the "
                            "projection lacks its last records", timeout)
                return False
            await asyncio.sleep(0.2)
        return True

    async def _stop(self, broker: KafkaBroker) -> None:
        if id(broker) not in self.stopped:
            self.stopped.add(id(broker))
            await broker.stop()

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the projection between the projector's batches (call `settle` first)."""
        assert self.projector is not None, "this stack runs no projector"
        async with self.projector.lock:
            return self.projector.read(sql, params)


@contextlib.asynccontextmanager
async def running(
    parts: Sequence[Part], follower: FollowerFactory | None = None, *, bootstrap: str,
    partitions: int = 3,
) -> AsyncIterator[Stack]:
    """Start agents (and the follower, if any) against a real broker; stop them on exit.

    Start-up overlaps what takes seconds: every consumer group joins (half a session timeout
    on the embedded broker) while the deferred policies load, one at a time, in the order
    of `parts`; each agent consumes once its state is rebuilt, and starts its own traffic
    (`kickoff`) as soon as it is, so the first queries flow while later models still load.
    """
    await asyncio.to_thread(ensure_topics, bootstrap, partitions)
    stack = Stack(
        agents={p.key: p.agent(bootstrap=bootstrap) for p in parts},
        projector=follower(bootstrap, None) if follower is not None else None,
        bootstrap=bootstrap,
    )
    stack.brokers.extend(a.broker for a in stack.agents.values())
    if stack.projector:
        stack.brokers.append(stack.projector.broker)

    async def agent_up(agent: Agent[Any]) -> None:
        await agent.admit(topics=False)  # before its consumer joins: a second global
        # instance is refused; the topics were made above
        await asyncio.gather(agent.broker.start(), agent.load())
        await agent.kickoff()

    async def follower_up(projector: Follower) -> None:
        await projector.prepare()
        await projector.broker.start()

    try:
        for agent in stack.agents.values():
            agent.loading()  # queued in the order of `parts`: the traffic source's first
        await asyncio.gather(*(agent_up(a) for a in stack.agents.values()),
                             *([follower_up(stack.projector)] if stack.projector else []))
        yield stack
    finally:
        for broker in reversed(stack.brokers):
            await stack._stop(broker)
        if stack.projector:
            stack.projector.close()


@contextlib.asynccontextmanager
async def in_memory(
    parts: Sequence[Part], follower: FollowerFactory | None = None
) -> AsyncIterator[Stack]:
    """The same stack on FastStream's in-memory TestKafkaBroker (unit tests only: no log)."""
    broker = make_broker("memory")
    stack = Stack(
        agents={p.key: p.agent(bootstrap="memory", broker=broker) for p in parts},
        projector=follower("memory", broker) if follower is not None else None,
    )
    for agent in stack.agents.values():
        agent.without_log()
    try:
        async with TestKafkaBroker(broker) as test_broker:
            stack.brokers.append(test_broker)
            for agent in stack.agents.values():
                await agent.kickoff()
            yield stack
    finally:
        if stack.projector:
            stack.projector.close()

