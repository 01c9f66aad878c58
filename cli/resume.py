"""`sleepwake run --resume`: a stopped run goes on from its log.

When a run stops (finished, or Ctrl-C), its agents stop first and the projector reads the
log to its end; then where every consumer group stood and where the log ended are saved in
the run's file (`record_stop`). To resume, the log is written back into the broker from
the archive, at the same offsets, the groups are set where they stood, and the agents start
as after any restart: each folds what it had consumed and goes on (`restore`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from agents.config import SystemConfig
from cli.audit import AuditError, run_config
from events.topology import all_topics, dead_letter_of, event_topics
from projections.projector import projector_group
from projections.resumable import (
    NotResumable,
    clear_stop,
    dead_letter_log,
    event_log,
    save_stop,
    saved_stop,
)
from projections.store import Store
from runtime.admin import ensure_topics
from runtime.bus import partitions_from_env
from runtime.positions import end_offsets, group_positions, set_group_positions, write_back

log = logging.getLogger("sleepwake.resume")


def run_file(path: Path) -> Path:
    """The run's DuckDB file: `path` itself, or run.duckdb in a run's report directory."""
    db = path / "run.duckdb" if path.is_dir() else path
    if not db.is_file():
        raise NotResumable(f"{path} is neither a run's report directory (with run.duckdb) nor "
                           "a run's DuckDB file")
    return db


def record_stop(bootstrap: str, db: Path) -> bool:
    """Save where the groups and the log stand, if the projection holds the whole log;
    otherwise clear any earlier stop (it no longer describes the log). True if saved."""
    try:
        return _record_stop(bootstrap, db)
    except Exception as exc:  # e.g. an external broker gone: the run's own outcome stands
        log.warning("could not save where the run stopped (%s): it cannot be resumed", exc)
        clear_stop(db)
        return False


def _record_stop(bootstrap: str, db: Path) -> bool:
    store = Store(db)
    try:
        instance = store.instance
    finally:
        store.close()
    ends = end_offsets(bootstrap, all_topics())
    groups = group_positions(bootstrap)
    read = groups.get(projector_group(instance), {})
    missing = sum(end - read.get(tp, 0) for tp, end in ends.items() if read.get(tp, 0) < end)
    if missing:
        log.warning("%d records were not projected before the stop: this run cannot be "
                    "resumed", missing)
        clear_stop(db)
        return False
    save_stop(db, groups, ends)
    return True


def restore(bootstrap: str, db: Path) -> SystemConfig:
    """Put the run's log and its groups' positions back into the broker (unless the broker
    still holds that log) and return the run's configuration, as its log announced it."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        groups, ends = saved_stop(con)
        try:
            config = run_config(con)
        except AuditError as exc:
            raise NotResumable("the run stopped before it logged its configuration: start a "
                               "new run") from exc
        now = end_offsets(bootstrap, all_topics())
        held = {tp: end for tp, end in now.items() if end}
        if held == {tp: end for tp, end in ends.items() if end}:
            log.info("the broker still holds this run's log: going on from it")
            return config
        if held:
            raise NotResumable(
                f"the broker at {bootstrap} holds another log ({sum(held.values())} records); "
                "resume on a fresh broker (the default embedded one) or delete the topics")
        partitions = partitions_from_env()
        if any(p >= partitions for _, p in ends):
            raise NotResumable(f"the run used more than {partitions} partitions per topic: "
                               "set SLEEPWAKE_PARTITIONS as it was")
        ensure_topics(bootstrap, partitions)
        written = write_back(bootstrap, event_log(con, ends))
        letters = write_back(bootstrap, dead_letter_log(con))
    finally:
        con.close()
    set_group_positions(bootstrap, _placed(groups, bootstrap))
    log.info("wrote %d events and %d dead letters back; %d groups set where they stood",
             written, letters, len(groups))
    return config


def _placed(groups: dict[str, dict[tuple[str, int], int]], bootstrap: str
            ) -> dict[str, dict[tuple[str, int], int]]:
    """Groups' offsets for the rebuilt log: as saved on event topics, at the new end of the
    dead-letter topics (rebuilt as sets; every reader had read them whole)."""
    letters = [dead_letter_of(t) for t in event_topics()]
    ends = end_offsets(bootstrap, letters)
    placed: dict[str, dict[tuple[str, int], int]] = {}
    for group, offsets in groups.items():
        kept = {tp: o for tp, o in offsets.items() if tp[0] not in letters}
        if any(tp[0] in letters for tp in offsets):
            kept |= {tp: end for tp, end in ends.items() if end}
        placed[group] = kept
    return placed
