"""Contract tests, written once and run on both backends: in-memory and the real broker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.ponger.policy import POLICY as PONGER
from agents.registry import proof_parts as proof
from events.deadletter import MAX_ORIGINAL
from events.topology import dead_letter_of, topic_of
from projections.replay import replay_from_kafka
from runtime.bus import publish_event
from runtime.policy import AnyEnvelope
from runtime.stack import Part
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
    kind, stack_of = backend
    bad = bad_inputs()
    raising = Part("ponger", replace(PONGER, decide=_boom_on("boom")))
    async with stack_of([raising], db) as stack:
        broker = stack.brokers[0]
        for _, raw in bad:
            await broker.publish(raw, topic=topic_of("pinger"), key=b"bad")
        await publish_event(broker, ping("boom", 0, 1))  # valid, but the policy raises on it
        await publish_event(broker, ping("after", 0, 1))
        await broker.publish(b"junk", topic=dead_letter_of(topic_of("ponger")))
        assert stack.projector is not None
        store = stack.projector.store
        total_in = len(bad) + 3  # two good pings and the ponger's pong

        def settled() -> bool:  # 3 events; letters of the projector, of the ponger (+ its
            # handler error) and the junk on the dead-letter topic
            return stack.projected() + stack.projector.dead_letters >= 3 + 2 * len(bad) + 2

        await stack.wait_for(settled, timeout=60)
        letters = store.conn.execute(
            "SELECT consumer, reason, original, topic FROM dead_letters").fetchall()
        by_projector = sorted((reason, raw) for who, reason, raw, topic in letters
                              if who == "projector" and not topic.endswith(".dlq"))
        assert by_projector == sorted((r, raw[:MAX_ORIGINAL]) for r, raw in bad)
        assert sorted(r for who, r, _, _ in letters if who == "ponger") == sorted(
            [*(r for r, _ in bad), "handler_error"])
        assert [r for who, r, _, t in letters if t.endswith(".dlq")] == ["undecodable"]
        # events in = events projected + dead letters (as seen by the projector)
        assert stack.projected() + len(by_projector) == total_in
        assert store.conn.execute(
            "SELECT pongs FROM rallies WHERE rally = 'after'").fetchone() == (1,)
        assert stack.agents["ponger"].dead_letters == len(bad) + 1
        projected, letters_live = stack.projected(), len(letters)
    if kind == "kafka":  # a replay from the log meets the same junk and keeps going
        counts = replay_from_kafka(stack.agents["ponger"].bootstrap, db.with_name("r.duckdb"),
                                   progress=False)
        assert counts["events"] == projected and counts["dead_letters"] == letters_live


def _boom_on(rally: str) -> Any:
    def decide(state: Any, event: AnyEnvelope) -> Any:
        if getattr(event.data, "rally", None) == rally:
            raise RuntimeError(f"policy cannot use rally {rally!r}")
        return PONGER.decide(state, event)
    return decide
