"""What a stopped run leaves in its projection so that it can go on: where every consumer
group stood and where the log ended when it stopped, and the log itself rebuilt from the
archive, record by record at its original position.

The archive holds every event the projector applied with its raw bytes and position. The
positions it lacks are records the projector did not apply: ones it dead-lettered (their
bytes are in `dead_letters`) and second copies of an event already archived (an agent that
re-published after a restart), which every consumer skips; such a gap is filled with a copy
of the record before it, which every consumer skips the same way. Dead-letter topics are
rebuilt as sets (no position refers to a dead letter's own offset), so each group reading
them is placed at their new end.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import duckdb

from events.deadletter import DeadLetter
from events.topology import dead_letter_of, event_topics
from runtime.positions import LogRecord, Offsets

#: The tables a stop writes: positions, not content (projections.digest leaves them out).
TABLES = ("stop_groups", "stop_log_ends")

DDL = (
    """CREATE TABLE IF NOT EXISTS stop_groups (
        "group" VARCHAR, topic VARCHAR, "partition" INTEGER, "offset" BIGINT,
        PRIMARY KEY ("group", topic, "partition"))""",
    """CREATE TABLE IF NOT EXISTS stop_log_ends (
        topic VARCHAR, "partition" INTEGER, "end" BIGINT, PRIMARY KEY (topic, "partition"))""",
)


class NotResumable(RuntimeError):
    """The file holds no clean stop, or its archive cannot rebuild the log; says which."""


def save_stop(db: str | Path, groups: dict[str, Offsets], ends: Offsets) -> None:
    """Record where the groups and the log stood (replacing an earlier stop)."""
    con = duckdb.connect(str(db))
    try:
        for ddl in DDL:
            con.execute(ddl)
        con.execute("BEGIN")
        con.execute("DELETE FROM stop_groups")
        con.execute("DELETE FROM stop_log_ends")
        con.executemany("INSERT INTO stop_groups VALUES (?, ?, ?, ?)",
                        [(g, t, p, o) for g, offs in groups.items() for (t, p), o in offs.items()])
        con.executemany("INSERT INTO stop_log_ends VALUES (?, ?, ?)",
                        [(t, p, e) for (t, p), e in ends.items()])
        con.execute("COMMIT")
    finally:
        con.close()


def clear_stop(db: str | Path) -> None:
    """Forget an earlier stop: the log has moved on without a clean one."""
    con = duckdb.connect(str(db))
    try:
        for table in TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        con.close()


def saved_stop(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, Offsets], Offsets]:
    """The groups' offsets and the log ends of the last clean stop."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not set(TABLES) <= tables:
        raise NotResumable(
            "this run was not stopped cleanly (no positions were saved: killed, or the "
            "projector could not read the log to its end before the stop), so what its "
            "agents had done when it stopped is unknown; start a new run instead")
    groups: dict[str, Offsets] = {}
    for g, t, p, o in con.execute("SELECT * FROM stop_groups").fetchall():
        groups.setdefault(g, {})[(t, p)] = o
    ends = {(t, p): e for t, p, e in con.execute("SELECT * FROM stop_log_ends").fetchall()}
    return groups, ends


def event_log(con: duckdb.DuckDBPyConnection, ends: Offsets) -> Iterator[LogRecord]:
    """Every record of the event topics at its position, 0 up to the saved end."""
    topics = set(event_topics())
    for (topic, partition), end in sorted(ends.items()):
        if topic in topics and end:
            archived = {o: (s.encode(), bytes(raw)) for o, s, raw in con.execute(
                'SELECT "offset", subject, raw FROM events WHERE topic = ? AND "partition" = ?',
                [topic, partition]).fetchall()}
            letters = {o: (k.encode() if k is not None else None, bytes(orig)) for o, k, orig in
                       con.execute('SELECT "offset", "key", original FROM dead_letters '
                                   'WHERE topic = ? AND "partition" = ?',
                                   [topic, partition]).fetchall()}
            yield from _positions(topic, partition, end, archived | letters)


def _positions(topic: str, partition: int, end: int,
               known: dict[int, tuple[bytes | None, bytes]]) -> Iterator[LogRecord]:
    if not known:
        raise NotResumable(f"{topic}[{partition}] held {end} records and none is archived")
    last = known[min(known)]
    for offset in range(end):
        key, value = last = known.get(offset, last)  # a gap: a skipped second copy
        yield LogRecord(topic, partition, offset, key, value)


def dead_letter_log(con: duckdb.DuckDBPyConnection) -> Iterator[LogRecord]:
    """Every dead letter, as the record it was on its dead-letter topic (partition and
    offset left to the broker); junk found on a dead-letter topic goes back as it was."""
    dead_letter_topics = {dead_letter_of(t) for t in event_topics()}
    rows = con.execute(
        'SELECT consumer, topic, "partition", "offset", reason, detail, "key", original, digest '
        'FROM dead_letters ORDER BY ALL').fetchall()
    for consumer, topic, partition, offset, reason, detail, key, original, digest in rows:
        keyed = key.encode() if key is not None else None
        if topic in dead_letter_topics:
            yield LogRecord(topic, None, None, keyed, bytes(original))
            continue
        letter = DeadLetter(
            reason=reason, detail=detail, consumer=consumer, topic=topic, partition=partition,
            offset=offset, key=key, original_b64=base64.b64encode(bytes(original)).decode(),
            original_size=len(original), original_sha256=digest)  # size: of the bytes kept
        yield LogRecord(dead_letter_of(topic), None, None, keyed, letter.model_dump_json().encode())

