"""The system declaration: every event has one producer, topics derive from it."""

from __future__ import annotations

from events.catalogue import PAYLOADS
from events.topology import AGENTS, SYSTEM, all_topics, dead_letter_of, producer_of


def test_every_payload_has_exactly_one_producer() -> None:
    for payload in PAYLOADS:
        assert producer_of(payload).name in AGENTS


def test_every_topic_has_a_dead_letter_topic() -> None:
    topics = all_topics()
    for spec in SYSTEM:
        assert spec.topic in topics and dead_letter_of(spec.topic) in topics
    assert len(topics) == len(set(topics)) == 2 * len(SYSTEM)


def test_design_agents_are_declared() -> None:
    assert {"selector", "meta_selector", "cartographer", "envelope_broker", "trainer",
            "canary_judge", "gateway", "worker", "grader"} <= set(AGENTS)
