"""Topic administration, derived from the system declaration (events.topology).

Event topics are never compacted and never expire: replay needs every event.
"""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from events.topology import all_topics
from runtime.bus import sync_client_kwargs

log = logging.getLogger("sleepwake.admin")

TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


def ensure_topics(bootstrap: str, partitions: int, topics: list[str] | None = None) -> list[str]:
    """Create the missing topics; existing ones are left as they are. Returns those created."""
    wanted = topics if topics is not None else all_topics()
    admin = KafkaAdminClient(
        **sync_client_kwargs(), bootstrap_servers=bootstrap,
        client_id="sleepwake-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        created: list[str] = []
        for topic in missing:
            try:
                admin.create_topics(
                    [NewTopic(topic, partitions, 1, topic_configs=TOPIC_CONFIG)]
                )
                created.append(topic)
            except TopicAlreadyExistsError:
                log.debug("topic %s appeared concurrently", topic)
        if created:
            log.info("created %d topics with %d partitions", len(created), partitions)
        return created
    finally:
        admin.close()


class SecondInstanceError(RuntimeError):
    """A global agent is already running; the message says what to do instead."""


def refuse_second_instance(bootstrap: str, group: str, agent: str) -> None:
    """Refuse to start a global agent whose consumer group already has a live member.

    A global agent's state spans the whole log: a second instance in the same group would
    see only some partitions and decide on a partial state. Keyed agents (the workers)
    scale by partition instead. Two instances started within the same instant can both pass
    this check; the deployment (one replica) is the real guard, this one catches mistakes.
    """
    admin = KafkaAdminClient(
        **sync_client_kwargs(), bootstrap_servers=bootstrap,
        client_id=f"{group}-check")
    try:
        described = admin.describe_consumer_groups([group])
    except Exception as exc:  # a broker without DescribeGroups: nothing to check against
        log.debug("cannot describe group %s: %s", group, exc)
        return
    finally:
        admin.close()
    for desc in described:
        members = getattr(desc, "members", None) or []
        state = str(getattr(desc, "state", "")).lower()
        if members and state not in {"dead", "empty"}:
            raise SecondInstanceError(
                f"{agent} is a global agent and an instance is already running in consumer "
                f"group {group} ({len(members)} member(s)); run one instance of it, and "
                "scale only keyed agents (the workers) with more replicas"
            )
