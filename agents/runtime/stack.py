"""Run several agents and the projector in one process: the embedded default and the tests.

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

from agents.registry import POLICIES
from agents.runtime.admin import ensure_topics
from agents.runtime.bus import make_broker
from agents.runtime.shell import Agent
from projections.projector import Projector


@dataclass
class Stack:
    agents: dict[str, Agent[Any]]
    projector: Projector | None
    brokers: list[KafkaBroker] = field(default_factory=list)

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
    ) -> None:
        """Poll a count barrier (never a clock-ordered one) until it holds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)

    def projected(self) -> int:
        return self.projector.applied if self.projector else 0


@contextlib.asynccontextmanager
async def running(
    names: Sequence[str], db: Path | str | None, *, bootstrap: str | None = None,
    partitions: int = 3,
) -> AsyncIterator[Stack]:
    """Start agents (and a projector on `db`) against a real broker; stop them on exit."""
    assert bootstrap is not None, "running() needs a bootstrap address"
    await asyncio.to_thread(ensure_topics, bootstrap, partitions)
    stack = Stack(
        agents={n: Agent(n, POLICIES[n], bootstrap=bootstrap) for n in names},
        projector=Projector(db, bootstrap=bootstrap) if db is not None else None,
    )
    parts: list[Any] = [*stack.agents.values(), *([stack.projector] if stack.projector else [])]
    try:
        await asyncio.gather(*(part.prepare() for part in parts))
        stack.brokers.extend(part.broker for part in parts)
        await asyncio.gather(*(broker.start() for broker in stack.brokers))
        yield stack
    finally:
        for broker in reversed(stack.brokers):
            await broker.stop()
        if stack.projector:
            stack.projector.store.close()


@contextlib.asynccontextmanager
async def in_memory(names: Sequence[str], db: Path | str | None) -> AsyncIterator[Stack]:
    """The same stack on FastStream's in-memory TestKafkaBroker (unit tests only: no log)."""
    broker = make_broker("memory")
    stack = Stack(
        agents={n: Agent(n, POLICIES[n], bootstrap="memory", broker=broker) for n in names},
        projector=Projector(db, bootstrap="memory", broker=broker, positions=False)
        if db is not None else None,
    )
    try:
        async with TestKafkaBroker(broker) as test_broker:
            stack.brokers.append(test_broker)
            yield stack
    finally:
        if stack.projector:
            stack.projector.store.close()
