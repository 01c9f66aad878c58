"""Topic administration, derived from the system declaration (events.topology).

Event topics are never compacted and never expire: replay needs every event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka.admin import KafkaAdminClient, MemberToRemove, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from events.topology import all_topics
from runtime.bus import SESSION_TIMEOUT_MS, sync_client_kwargs

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


class _GroupAdmin(KafkaAdminClient):
    """kafka-python decodes a group's authorized operations into ACL enums and raises on a bit
    it does not know; tansu sets all 32. Membership is all the check reads, so they are dropped."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("authorized_operations", None)
        return obj


#: The member id the expiry nudge "removes": no client is ever given it.
_NOBODY = "sleepwake-nobody"


def live_members(bootstrap: str, group: str) -> list[str]:
    """The member ids of `group` that the coordinator counts as alive.

    tansu expires a member that stopped heartbeating only when the group is next touched, and
    a sole member of generation 0 never sends LeaveGroup (aiokafka leaves only from generation
    1 on), so DescribeGroups alone keeps listing a stopped instance. A LeaveGroup for a member
    id that no one has (a no-op for the live members) makes it drop the expired ones first.
    """
    admin = _GroupAdmin(**sync_client_kwargs(), bootstrap_servers=bootstrap,
                        client_id=f"{group}-check")
    try:
        try:
            admin.remove_group_members(group, [MemberToRemove(member_id=_NOBODY)])
        except KafkaError as exc:  # e.g. an unknown group on Kafka; describing still answers
            log.debug("expiry nudge on %s: %s", group, exc)
        described = admin.describe_groups([group]).get(group, {})
    finally:
        admin.close()
    if described.get("error"):
        raise KafkaError(f"describing consumer group {group}: {described['error']}")
    if str(described.get("group_state", "")).lower() in {"dead", "empty"}:
        return []
    return [str(m["member_id"]) for m in described.get("members") or []]


def refuse_second_instance(
    bootstrap: str, group: str, agent: str, grace: float | None = None
) -> None:
    """Refuse to start a global agent whose consumer group already has a live member.

    A global agent's state spans the whole log: a second instance in the same group would
    see only some partitions and decide on a partial state. Keyed agents (the workers)
    scale by partition instead. A member is live until it misses its session timeout, so
    one still listed is re-checked for `grace` seconds (a session and a heartbeat): an
    instance that just stopped or crashed is let through once its session expires. Two
    instances started within the same instant can both pass this check; the deployment
    (one replica) is the real guard, this one catches mistakes.
    """
    wait = grace if grace is not None else (SESSION_TIMEOUT_MS + SESSION_TIMEOUT_MS // 4) / 1000
    deadline = time.monotonic() + wait
    while True:
        try:
            members = live_members(bootstrap, group)
        except KafkaError as exc:  # e.g. a broker without these APIs: nothing to check against
            log.warning("cannot check group %s for a running instance: %s", group, exc)
            return
        if not members or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if members:
        raise SecondInstanceError(
            f"{agent} is a global agent and an instance is already running in consumer "
            f"group {group} ({len(members)} member(s)); stop that instance before starting "
            "another, run one instance of a global agent, and scale only keyed agents (the "
            "workers) with more replicas"
        )
