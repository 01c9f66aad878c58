"""What only a real log can show: resume, replay from 0, group splits, redelivery, replays.

FastStream's TestKafkaBroker has no offsets and one member per group, so these run on the
embedded broker only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from faststream.kafka import KafkaBroker

from agents.ponger.policy import POLICY as PONGER
from agents.registry import proof_parts as proof
from events.codec import encode
from events.topology import producer_of
from projections.digest import digests
from projections.projector import Projector, projector_on
from projections.replay import ReplayError, replay_from_archive, replay_from_kafka
from projections.store import Store
from runtime.bus import make_broker, publish_event
from runtime.embedded import EmbeddedBroker
from runtime.shell import Agent
from runtime.stack import running
from tests.spine.helpers import ping, rally_log

pytestmark = pytest.mark.broker


async def _publish_log(bootstrap: str, events: list, copies: int = 1) -> None:
    broker: KafkaBroker = make_broker(bootstrap)
    async with broker:
        await broker.connect()
        for event in events:
            for _ in range(copies):
                await broker.publish(encode(event), topic=producer_of(type(event.data)).topic,
                                     key=event.subject.encode())


async def _project(bootstrap: str, db: Path, expected: int, group: str | None = None) -> Store:
    """Run a projector on `db` until it has applied `expected` new events."""
    projector = Projector(db, bootstrap=bootstrap, group=group)
    await projector.prepare()
    async with projector.broker:
        await projector.broker.start()
        async with asyncio.timeout(60):
            while projector.applied < expected:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # let any redelivered surplus arrive (it must change nothing)
    projector.store.close()
    return Store(db)


async def test_agent_restarted_mid_stream_resumes_with_nothing_lost_or_doubled(
    kafka: EmbeddedBroker, db: Path
) -> None:
    rallies, limit = 8, 12
    parts = proof("pinger", "ponger")
    async with running(parts, projector_on(db), bootstrap=kafka.bootstrap) as stack:
        for r in range(rallies):
            await publish_event(stack.brokers[0], ping(f"r{r}", 0, limit))
        await stack.wait_for(lambda: stack.agents["ponger"].handled >= rallies * 3)
        first = stack.agents["ponger"]
        await first.broker.stop()  # the ponger goes away mid-stream...
        half = stack.projected()
        assert half < 2 * rallies * limit
        second = Agent("ponger", PONGER, bootstrap=kafka.bootstrap)
        await second.prepare()  # ...and a new instance rebuilds its state from the log
        assert len(second.seen) >= first.handled
        async with second.broker:
            await second.broker.start()
            await stack.wait_for(lambda: stack.projected() >= 2 * rallies * limit, timeout=60)
            await asyncio.sleep(0.5)
        assert stack.projector is not None
        con = stack.projector.store.conn
        assert con.execute("SELECT count(*) FROM events").fetchone() == (2 * rallies * limit,)
        assert con.execute(
            "SELECT count(*) FROM rallies WHERE pongs = ? AND pings = ?", [limit, limit]
        ).fetchone() == (rallies,)
        # no pong was answered twice: one per (rally, n)
        assert con.execute(
            "SELECT count(*) FROM (SELECT subject, data->>'n' FROM events WHERE type = 'Pong' "
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone() == (0,)


async def test_projector_resumes_from_its_file_and_a_new_file_replays_from_zero(
    kafka: EmbeddedBroker, tmp_path: Path
) -> None:
    log = rally_log(10, 5)
    await _publish_log(kafka.bootstrap, log[:60])
    first = await _project(kafka.bootstrap, tmp_path / "p.duckdb", 60)
    first.close()
    await _publish_log(kafka.bootstrap, log[60:])
    resumed = await _project(kafka.bootstrap, tmp_path / "p.duckdb", 40)  # only the new ones
    fresh = await _project(kafka.bootstrap, tmp_path / "fresh.duckdb", 100)  # all, from 0
    for store in (resumed, fresh):
        assert store.conn.execute("SELECT count(*) FROM events").fetchone() == (100,)
    assert digests(resumed.conn) == digests(fresh.conn)


async def test_two_consumers_in_one_group_split_the_partitions(
    kafka: EmbeddedBroker, db: Path
) -> None:
    rallies, limit = 12, 10
    parts = proof("pinger", "ponger")
    async with running(parts, projector_on(db), bootstrap=kafka.bootstrap) as stack:
        twin = Agent("ponger", PONGER, bootstrap=kafka.bootstrap)
        await twin.prepare()  # as any instance starts: an agent consumes once it is ready
        async with twin.broker:
            await twin.broker.start()
            await asyncio.sleep(4)  # both members joined (a join takes half the session)
            for r in range(rallies):
                await publish_event(stack.brokers[0], ping(f"r{r}", 0, limit))
            await stack.wait_for(lambda: stack.projected() >= 2 * rallies * limit, timeout=60)
            one, two = stack.agents["ponger"].handled, twin.handled
    assert one > 0 and two > 0, (one, two)
    assert one + two == rallies * limit


async def test_redelivered_events_change_no_table(kafka: EmbeddedBroker, tmp_path: Path) -> None:
    log = rally_log(6, 4)
    await _publish_log(kafka.bootstrap, log, copies=2)  # every event on the log twice
    with EmbeddedBroker() as other:
        await _publish_log(other.bootstrap, log, copies=1)
        once = await _project(other.bootstrap, tmp_path / "once.duckdb", len(log))
    twice = await _project(kafka.bootstrap, tmp_path / "twice.duckdb", len(log))
    assert digests(twice.conn, exclude_columns=["offset"]) == digests(
        once.conn, exclude_columns=["offset"])
    before = digests(twice.conn)
    twice.close()
    # the same consumer position read again by a rewound group: byte-identical tables
    again = await _project(kafka.bootstrap, tmp_path / "twice.duckdb", 0, group="rewound")
    await asyncio.sleep(1.0)
    assert digests(again.conn) == before


async def test_replays_are_deterministic_and_archive_equals_kafka(
    kafka: EmbeddedBroker, tmp_path: Path
) -> None:
    log = rally_log(9, 4, cycles=3)
    await _publish_log(kafka.bootstrap, log)
    live = await _project(kafka.bootstrap, tmp_path / "live.duckdb", len(log))
    live.close()
    one = tmp_path / "one.duckdb"
    two = tmp_path / "two.duckdb"
    arch = tmp_path / "arch.duckdb"
    replay_from_kafka(kafka.bootstrap, one, progress=False)
    replay_from_kafka(kafka.bootstrap, two, progress=False)
    replay_from_archive(tmp_path / "live.duckdb", arch, progress=False)
    tables = [digests(Store(p).conn) for p in (one, two, arch, tmp_path / "live.duckdb")]
    assert tables[0] == tables[1] == tables[2] == tables[3]

    until = tmp_path / "until1.duckdb"
    replay_from_archive(tmp_path / "live.duckdb", until, until_cycle=1, progress=False)
    cycles = Store(until).conn.execute("SELECT DISTINCT cycle FROM events ORDER BY 1").fetchall()
    assert cycles == [(0,), (1,)]
    with pytest.raises(ReplayError, match="exists"):
        replay_from_archive(tmp_path / "live.duckdb", until, progress=False)


async def test_a_policy_that_loads_slowly_is_built_off_the_loop_and_misses_nothing(
    kafka: EmbeddedBroker, db: Path
) -> None:
    """`running` joins each consumer group while the agent's deferred policy builds (a model
    loading): records already on the log wait for it and are each answered once."""
    import threading

    from runtime.policy import Deferred
    from runtime.stack import Part

    rallies, built_on = 5, []

    def slow_build():  # type: ignore[no-untyped-def]
        built_on.append(threading.current_thread())
        import time

        time.sleep(4.5)  # longer than a group join (3 s here): its first records must wait
        return PONGER

    await _publish_log(kafka.bootstrap, [ping(f"r{r}", 0, 1) for r in range(rallies)])
    async with running([Part("ponger", Deferred(slow_build))], projector_on(db),
                       bootstrap=kafka.bootstrap) as stack:
        ponger = stack.agents["ponger"]
        await stack.wait_for(lambda: stack.projected() >= 2 * rallies, timeout=60)
        await stack.settle(quiet=0.5)
        assert ponger.handled == rallies and ponger.duplicates == 0
        assert stack.projected() == 2 * rallies
    assert len(built_on) == 1 and built_on[0] is not threading.main_thread()
