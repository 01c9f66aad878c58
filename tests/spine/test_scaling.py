"""How agents scale: keyed agents by replicas in one consumer group, global agents not at all.

A keyed agent's state is per message key, so replicas that split the partitions must write
the same log as one instance. A global agent's state spans the whole log, so a second
instance in its group is refused at start, and allowed again once the first has gone.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, cast

import pytest

from agents.grader.policy import POLICY as GRADER
from agents.ponger.policy import POLICY as PONGER
from agents.registry import proof_parts as proof
from events.envelope import Envelope
from projections.digest import digests
from projections.projector import Projector, projector_on
from runtime.admin import SecondInstanceError, live_members
from runtime.bus import publish_event
from runtime.embedded import EmbeddedBroker
from runtime.shell import Agent
from runtime.stack import running, wait_until
from tests.spine.helpers import ping

pytestmark = pytest.mark.broker

RALLIES, LIMIT, PARTITIONS = 12, 10, 3
#: Columns that say when and where an event was written, not what it says.
WHEN_AND_WHERE = ["time", "raw", "offset"]


def _assigned(agent: Agent[Any]) -> bool:
    consumer = getattr(agent.broker.subscribers[0], "consumer", None)  # aiokafka's, once started
    return consumer is not None and bool(consumer.assignment())


async def _proof_run(
    bootstrap: str, db: Path, first_pings: list[Envelope[Any]], replicas: int
) -> tuple[dict[str, str], list[tuple[Any, ...]], list[int]]:
    """The proof flow with the ponger as `replicas` instances of one group: the projected
    tables' digests, the rallies table, and how many events each replica decided."""
    async with running(proof("pinger", "ponger"), projector_on(db), bootstrap=bootstrap,
                       partitions=PARTITIONS) as stack:
        pongers = [stack.agents["ponger"]]
        twins = [Agent("ponger", PONGER, bootstrap=bootstrap) for _ in range(replicas - 1)]
        try:
            for twin in twins:
                assert twin.group == pongers[0].group == "sw-ponger"
                await twin.prepare()
                await twin.broker.start()
                pongers.append(twin)
            # every replica holds partitions before the first ping, so the split is exercised
            await wait_until(lambda: all(_assigned(p) for p in pongers), 20, "replicas assigned")
            for event in first_pings:
                await publish_event(stack.brokers[0], event)
            await stack.wait_for(lambda: stack.projected() >= 2 * RALLIES * LIMIT, timeout=20,
                                 what="every ping and pong projected")
            await asyncio.sleep(0.5)  # any redelivered surplus lands (it must change nothing)
            tables = await stack.query("SELECT * FROM rallies ORDER BY rally")
            pongs = await stack.query(
                "SELECT count(*), count(DISTINCT id), count(DISTINCT (subject, data->>'n')) "
                "FROM events WHERE type = 'Pong'")
            assert pongs == [(RALLIES * LIMIT,) * 3], pongs  # every pong exactly once
            projector = cast(Projector, stack.projector)
            async with projector.lock:
                digest = digests(projector.store.conn, exclude_columns=WHEN_AND_WHERE)
            return digest, tables, [p.handled for p in pongers]
        finally:
            for twin in twins:
                await twin.broker.stop()


async def test_two_replicas_of_a_keyed_agent_write_what_one_writes(tmp_path: Path) -> None:
    first_pings = [ping(f"r{r}", 0, LIMIT, cycle=r % 3) for r in range(RALLIES)]
    with EmbeddedBroker() as split, EmbeddedBroker() as single:  # side by side: joins wait
        (two, rallies_two, handled), (one, rallies_one, [alone]) = await asyncio.gather(
            _proof_run(split.bootstrap, tmp_path / "two.duckdb", first_pings, replicas=2),
            _proof_run(single.bootstrap, tmp_path / "one.duckdb", first_pings, replicas=1))
    complete = sorted((f"r{r}", LIMIT, LIMIT, LIMIT, LIMIT - 1, LIMIT - 1)
                      for r in range(RALLIES))
    assert rallies_two == rallies_one == complete
    assert two == one  # same events (ids, causes, payloads, partitions) and same views
    assert alone == RALLIES * LIMIT
    # the replicas split the partitions; a ping redelivered across a rebalance is decided
    # again by the other replica, into the same derived pong id
    assert all(n > 0 for n in handled), handled
    assert sum(handled) >= RALLIES * LIMIT


async def test_a_second_instance_of_a_global_agent_is_refused_until_the_first_is_gone(
    kafka: EmbeddedBroker,
) -> None:
    first = Agent("grader", GRADER, bootstrap=kafka.bootstrap)
    assert first.spec.scaling == "global"
    await first.prepare()
    await first.broker.start()
    try:
        await wait_until(lambda: bool(live_members(kafka.bootstrap, first.group)), 10,
                     "the first grader joined its group")
        second = Agent("grader", GRADER, bootstrap=kafka.bootstrap)
        started = time.monotonic()
        with pytest.raises(SecondInstanceError) as refused:
            await second.prepare()
        message = str(refused.value)
        assert "grader" in message and first.group in message
        assert "stop that instance" in message and "keyed agents" in message
        assert time.monotonic() - started < 12  # re-checked for one session, not forever
    finally:
        await first.broker.stop()
    # the first instance is gone (its session expires: a sole member never sends LeaveGroup)
    third = Agent("grader", GRADER, bootstrap=kafka.bootstrap)
    await third.prepare()
    await third.broker.start()
    try:
        await wait_until(lambda: bool(live_members(kafka.bootstrap, third.group)), 10,
                     "the new grader joined its group")
    finally:
        await third.broker.stop()
