"""Run several agents and the projector in one process: the main job and the tests.

In production each runs as its own process (`faststream run agents.<name>:app`); here they
share an event loop but still talk only through the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker, TestKafkaBroker

from agents.runtime.admin import ensure_topics
from agents.runtime.bus import make_broker
from agents.runtime.policy import Policy
from agents.runtime.shell import Agent
from projections.projector import Projector


@dataclass(frozen=True)
class Part:
    """One agent instance to run: its name in the topology, its policy, its instance name."""

    name: str
    policy: Policy[Any]
    instance: str | None = None

    @property
    def key(self) -> str:
        return self.name + (f"/{self.instance}" if self.instance else "")


@dataclass
class Stack:
    agents: dict[str, Agent[Any]]
    projector: Projector | None
    brokers: list[KafkaBroker] = field(default_factory=list)

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
    ) -> None:
        """Poll a count barrier (never a clock-ordered one) until it holds."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await asyncio.sleep(0.02)
        except TimeoutError as exc:
            raise TimeoutError(f"gave up after {timeout}s waiting for {what}") from exc

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

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the projection between the projector's batches (call `settle` first)."""
        assert self.projector is not None, "this stack runs no projector"
        async with self.projector.lock:
            rows: list[tuple[Any, ...]] = self.projector.store.conn.execute(
                sql, list(params)).fetchall()
        return rows


@contextlib.asynccontextmanager
async def running(
    parts: Sequence[Part], db: Path | str | None, *, bootstrap: str | None = None,
    partitions: int = 3,
) -> AsyncIterator[Stack]:
    """Start agents (and a projector on `db`) against a real broker; stop them on exit."""
    assert bootstrap is not None, "running() needs a bootstrap address"
    await asyncio.to_thread(ensure_topics, bootstrap, partitions)
    stack = Stack(
        agents={p.key: Agent(p.name, p.policy, bootstrap=bootstrap, instance=p.instance)
                for p in parts},
        projector=Projector(db, bootstrap=bootstrap) if db is not None else None,
    )
    members: list[Any] = [*stack.agents.values(), *([stack.projector] if stack.projector else [])]
    try:
        await asyncio.gather(*(m.prepare() for m in members))
        stack.brokers.extend(m.broker for m in members)
        await asyncio.gather(*(broker.start() for broker in stack.brokers))
        for agent in stack.agents.values():
            await agent.kickoff()
        yield stack
    finally:
        for broker in reversed(stack.brokers):
            await broker.stop()
        if stack.projector:
            stack.projector.store.close()


@contextlib.asynccontextmanager
async def in_memory(parts: Sequence[Part], db: Path | str | None) -> AsyncIterator[Stack]:
    """The same stack on FastStream's in-memory TestKafkaBroker (unit tests only: no log)."""
    broker = make_broker("memory")
    stack = Stack(
        agents={p.key: Agent(p.name, p.policy, bootstrap="memory", broker=broker,
                             instance=p.instance) for p in parts},
        projector=Projector(db, bootstrap="memory", broker=broker, positions=False)
        if db is not None else None,
    )
    try:
        async with TestKafkaBroker(broker) as test_broker:
            stack.brokers.append(test_broker)
            for agent in stack.agents.values():
                await agent.kickoff()
            yield stack
    finally:
        if stack.projector:
            stack.projector.store.close()


def proof(*names: str) -> list[Part]:
    """Parts of the proof flow (pinger, ponger)."""
    from agents.pinger.policy import POLICY as PINGER
    from agents.ponger.policy import POLICY as PONGER

    policies: dict[str, Policy[Any]] = {"pinger": PINGER, "ponger": PONGER}
    return [Part(n, policies[n]) for n in names]
