"""Run agents' policies in one process with no broker, delivering every event to every agent
that reads its producer's topic.

Two uses: the baseline the bus is measured against (the same policies called directly), and
a harness that delivers events in any order Kafka allows — per topic and key in order, across
keys and topics in a seeded random interleaving — to show that no decision depends on it.
Ids are derived exactly as the shell derives them, so a direct run and a bus run of the
same configuration give the same events.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from events.envelope import derived_id, make_envelope
from events.topology import AGENTS, producer_of
from runtime.policy import AnyEnvelope, Emit
from runtime.stack import Part


@dataclass
class DirectRun:
    """What a direct run produced: every event in delivery order, and each agent's state."""

    log: list[AnyEnvelope] = field(default_factory=list)
    states: dict[str, Any] = field(default_factory=dict)


def _id_source(part: Part) -> str:
    return part.name + (f"/{part.instance}" if part.instance else "")


def run_direct(parts: Sequence[Part], seed: int | None = None, limit: int = 10_000_000
               ) -> DirectRun:
    """Run until no event is left (or `limit` deliveries). `seed` None: first in, first out;
    otherwise a seeded interleaving that keeps each (topic, key) stream in order."""
    rng = random.Random(seed) if seed is not None else None
    readers: dict[str, list[Part]] = {}
    for part in parts:
        for topic in AGENTS[part.name].input_topics:
            readers.setdefault(topic, []).append(part)
    policies = {p.key: p.built() for p in parts}
    run = DirectRun(states={k: policy.initial for k, policy in policies.items()})
    fifo: deque[AnyEnvelope] = deque()
    streams: dict[tuple[str, str], deque[AnyEnvelope]] = {}

    def emit(part: Part, emit: Emit, cause: AnyEnvelope | None, index: int) -> None:
        source = _id_source(part)
        eid = (emit.event_id(source, cause.id, index) if cause is not None
               else derived_id(source, f"start:{emit.data.TYPE}:{emit.subject}"))
        event = make_envelope(emit.data, source=source, subject=emit.subject, cause=cause,
                              id=eid, correlationid=emit.correlationid)
        run.log.append(event)
        if rng is None:
            fifo.append(event)
        else:
            streams.setdefault((producer_of(type(emit.data)).topic, emit.subject),
                               deque()).append(event)

    def next_event() -> AnyEnvelope | None:
        if rng is None:
            return fifo.popleft() if fifo else None
        live = [k for k, q in streams.items() if q]
        return streams[rng.choice(live)].popleft() if live else None

    for part in parts:
        for i, start in enumerate(policies[part.key].start(run.states[part.key])):
            emit(part, start, None, i)
    for _ in range(limit):
        event = next_event()
        if event is None:
            break
        for part in readers.get(producer_of(type(event.data)).topic, ()):
            emits, run.states[part.key] = policies[part.key].react(run.states[part.key], event)
            for index, out in enumerate(emits):
                emit(part, out, event, index)
    return run
