"""What an agent is, as data: its name (= its topic), what it emits, whose topics it reads.

Kept apart from `events.topology` (the built-in system) so that a plug-in package can declare
its own `AgentSpec` without importing the system it is being added to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from events.envelope import Payload

TOPIC_PREFIX = "sw"
TOPIC_VERSION = "v1"

Scaling = Literal["keyed", "global"]


@dataclass(frozen=True)
class AgentSpec:
    """One agent: its name (= its topic), what it emits, whose topics it reads, and how it
    scales: a `keyed` agent's state is per message key, so replicas in one consumer group
    split the partitions; a `global` agent's state spans the whole log, so it runs as one
    instance (a second one is refused at start)."""

    name: str
    produces: tuple[type[Payload], ...]
    consumes: tuple[str, ...] = ()
    summary: str = ""
    scaling: Scaling = "global"

    @property
    def topic(self) -> str:
        return topic_of(self.name)

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_of(self.topic)

    @property
    def input_topics(self) -> tuple[str, ...]:
        return tuple(topic_of(name) for name in self.consumes)


def topic_of(agent: str) -> str:
    return f"{TOPIC_PREFIX}.{agent}.{TOPIC_VERSION}"


def dead_letter_of(topic: str) -> str:
    return f"{topic}.dlq"
