"""Contract tests, written once and run on both backends: in-memory and the real broker."""

from __future__ import annotations

from pathlib import Path

from agents.runtime.bus import publish_event
from cli.stack import proof
from events.topology import topic_of
from tests.conftest import StackFactory
from tests.spine.helpers import bad_inputs, ping


async def test_agents_talk_only_through_the_log_and_every_event_is_projected(
    backend: tuple[str, StackFactory], db: Path
) -> None:
    _, stack_of = backend
    rallies, limit = 6, 4
    async with stack_of(proof("pinger", "ponger"), db) as stack:
        for r in range(rallies):
            await publish_event(stack.brokers[0], ping(f"r{r}", 0, limit))
        await stack.wait_for(lambda: stack.projected() >= 2 * rallies * limit, timeout=60)
        assert stack.projector is not None
        con = stack.projector.store.conn
        assert con.execute(
            "SELECT count(*) FROM rallies WHERE pings = ? AND pongs = ? AND last_pong = ?",
            [limit, limit, limit - 1],
        ).fetchone() == (rallies,)
        assert con.execute("SELECT count(DISTINCT id) FROM events").fetchone() == (
            2 * rallies * limit,
        )
        assert stack.agents["ponger"].handled == rallies * limit


async def test_bad_input_is_dead_lettered_and_the_next_event_processed(
    backend: tuple[str, StackFactory], db: Path
) -> None:
    _, stack_of = backend
    bad = bad_inputs()
    async with stack_of(proof("ponger"), db) as stack:
        broker = stack.brokers[0]
        for raw in bad.values():
            await broker.publish(raw, topic=topic_of("pinger"), key=b"bad")
        await publish_event(broker, ping("after", 0, 1))
        assert stack.projector is not None
        store = stack.projector.store
        total_in = len(bad) + 2  # the good ping and the ponger's pong

        def settled() -> bool:
            return stack.projected() + stack.projector.dead_letters >= total_in + len(bad)

        await stack.wait_for(settled, timeout=60)
        letters = store.conn.execute(
            "SELECT consumer, reason, original FROM dead_letters ORDER BY consumer, reason"
        ).fetchall()
        by_projector = {reason: raw for who, reason, raw in letters if who == "projector"}
        assert by_projector == bad  # reason and the original bytes, for every kind
        assert {reason for who, reason, _ in letters if who == "ponger"} == set(bad)
        # events in = events projected + dead letters (as seen by the projector)
        assert stack.projected() + len(by_projector) == total_in
        assert store.conn.execute(
            "SELECT pongs FROM rallies WHERE rally = 'after'").fetchone() == (1,)
