"""Audit: re-run each agent's pure policy over the archived log and compare decisions.

Because derived event ids are a function of (agent, cause, index), the event a policy
*would* emit for an input can be looked up by id among those the agent *did* emit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from agents.config import SystemConfig
from agents.registry import pure_policies
from events.codec import decode
from events.topology import AGENTS


@dataclass(frozen=True)
class Divergence:
    agent: str
    cause: str
    event_id: str
    problem: str

    def __str__(self) -> str:
        return f"{self.agent}: on {self.cause} -> {self.event_id}: {self.problem}"


@dataclass(frozen=True)
class AuditReport:
    checked: dict[str, int]
    divergences: list[Divergence]

    @property
    def ok(self) -> bool:
        return not self.divergences


class AuditError(RuntimeError):
    """The audit cannot run as asked; the message says what to do."""


def run_config(con: duckdb.DuckDBPyConnection) -> SystemConfig:
    """The configuration the run announced in its log (RunConfigured); a log that served no
    query needs none."""
    found = con.execute(
        "SELECT data->>'config' FROM events WHERE type = 'RunConfigured' LIMIT 1").fetchone()
    if found is None:
        served = con.execute("SELECT count(*) FROM events WHERE type = 'QueryReceived'"
                             ).fetchone()
        if served is not None and served[0] == 0:
            return SystemConfig()  # no query served (a proof run): no setting is used
        raise AuditError("the log holds no RunConfigured event (a run older than the audit, or "
                         "no traffic source): pass the run's configuration with --config")
    return SystemConfig.model_validate_json(found[0])


def audit(
    db: Path, until_cycle: int | None = None, config: SystemConfig | None = None
) -> AuditReport:
    """Check every pure agent against the archive in `db` (read-only), each rebuilt from the
    configuration the run logged (or `config`, which overrides it). An agent that cannot be
    rebuilt fails the audit loudly instead of being skipped."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        try:
            policies = pure_policies(config or run_config(con))
        except (OSError, ValueError) as exc:
            raise AuditError(f"cannot rebuild the agents from the run's configuration: {exc}"
                             ) from exc
        checked: dict[str, int] = {}
        divergences: list[Divergence] = []
        for name, policy in sorted(policies.items()):
            spec = AGENTS[name]
            cond = "" if until_cycle is None else f" AND (cycle IS NULL OR cycle <= {until_cycle})"
            inputs = con.execute(  # cycle by cycle: all of cycle c-1 before any of cycle c;
                # what the agent dead-lettered (its handler raised) it never folded: skip it
                f"SELECT raw FROM events e WHERE topic IN ({_list(spec.input_topics)}){cond} "
                "AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.consumer = ? "
                'AND d.topic = e.topic AND d."partition" = e."partition" '
                'AND d."offset" = e."offset") '
                # a cycle's closing last: live, an agent acted on the cycle's events before
                # the closing could exist (it counts grades of what the agent emitted)
                "ORDER BY cycle NULLS FIRST, type = 'CycleGraded', topic, \"partition\", "
                '"offset"', [name]
            ).fetchall()
            emitted = _emitted(con, spec.topic)
            state = policy.initial
            expected_ids: set[str] = set()
            causes: set[str] = set()
            for (raw,) in inputs:
                event = decode(raw)
                causes.add(str(event.id))
                emits, after = policy.react(state, event)
                for index, emit in enumerate(emits):
                    eid = str(emit.event_id(name, event.id, index))
                    expected_ids.add(eid)
                    got = emitted[eid][:3] if eid in emitted else None
                    want = (emit.data.TYPE, emit.subject, emit.data.model_dump(mode="json"))
                    if got is None:
                        divergences.append(Divergence(name, str(event.id), eid, "not emitted"))
                    elif got != want:
                        divergences.append(Divergence(
                            name, str(event.id), eid, f"emitted {got}, policy decides {want}"))
                state = after
            for eid, (_, _, _, cause) in emitted.items():
                if cause in causes and eid not in expected_ids:
                    divergences.append(Divergence(name, cause, eid, "emitted, policy would not"))
            checked[name] = len(inputs)
        return AuditReport(checked, divergences)
    finally:
        con.close()


def _list(items: tuple[str, ...]) -> str:
    return ", ".join(f"'{t}'" for t in items) or "NULL"


def _emitted(con: duckdb.DuckDBPyConnection, topic: str) -> dict[str, Any]:
    """What the agent emitted in reaction to an event: id -> (type, subject, data, cause)."""
    rows = con.execute(
        "SELECT id::VARCHAR, type, subject, data, causationid::VARCHAR FROM events "
        "WHERE topic = ? AND causationid IS NOT NULL", [topic]
    ).fetchall()
    return {eid: (kind, subj, json.loads(data), cause) for eid, kind, subj, data, cause in rows}
