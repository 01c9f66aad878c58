"""Topic administration, derived from the system declaration (events.topology).

Event topics are never compacted and never expire: replay needs every event.
"""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from events.topology import all_topics

log = logging.getLogger("sleepwake.admin")

TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


def ensure_topics(bootstrap: str, partitions: int, topics: list[str] | None = None) -> list[str]:
    """Create the missing topics; existing ones are left as they are. Returns those created."""
    wanted = topics if topics is not None else all_topics()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sleepwake-admin")
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
