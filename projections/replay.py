"""Rebuild every projection into a fresh DuckDB file, from Kafka or from an archive file.

Reading Kafka "to the end" reads to the end offsets of when it starts, read rather than asked
for (runtime.positions: the embedded broker answers them wrongly), with no idle wait.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from tqdm import tqdm

from events.catalogue import CATALOGUE
from events.codec import BadEvent, decode
from events.deadletter import DeadLetter
from events.topology import dead_letter_of, event_topics
from projections.rows import COLUMNS, Position, cycle_of, row
from projections.store import Store
from runtime.deadletters import read_dead_letter
from runtime.positions import read_to_end

CHUNK = 20_000


class ReplayError(RuntimeError):
    """A replay cannot run as asked; the message says what to change."""


def _fresh(out: Path) -> Store:
    if out.exists():
        raise ReplayError(f"{out} exists: replay builds a fresh file, choose another --out")
    return Store(out)


def _within(cycle: int | None, until_cycle: int | None) -> bool:
    return until_cycle is None or cycle is None or cycle <= until_cycle


def replay_from_kafka(
    bootstrap: str, out: Path, until_cycle: int | None = None, progress: bool = True
) -> dict[str, int]:
    """Project the whole log into `out`; bad records are counted, not fatal."""
    store = _fresh(out)
    counts = {"events": 0, "dead_letters": 0, "undecodable": 0}
    try:
        rows: list[tuple[Any, ...]] = []
        letters: list[tuple[DeadLetter, Position]] = []
        topics = event_topics()
        dlqs = {dead_letter_of(t) for t in topics}
        bar = tqdm(desc="replay from kafka", unit="ev", disable=not progress)
        for rec in read_to_end(bootstrap, [*topics, *sorted(dlqs)]):
            at = Position(rec.topic, rec.partition, rec.offset)
            bar.update()
            if rec.topic in dlqs:  # junk there becomes a letter of its own, as live
                letters.append((read_dead_letter(rec.value, rec, "projector"), at))
                continue
            try:
                event = decode(rec.value, topic=rec.topic)  # the live projector's trust rule
            except BadEvent:  # the projector dead-lettered it live: its letter is in the DLQ
                counts["undecodable"] += 1
                continue
            if _within(cycle_of(event.correlationid), until_cycle):
                rows.append(row(event, at, rec.value))
            if len(rows) >= CHUNK:
                counts["events"] += store.apply(rows)
                rows = []
        counts["events"] += store.apply(rows)
        counts["dead_letters"] += store.apply_dead_letters(letters)
        bar.close()
        return counts
    finally:
        store.close()


def replay_from_archive(
    archive: Path, out: Path, until_cycle: int | None = None, progress: bool = True
) -> dict[str, int]:
    """Project the archive table of another projection file into `out`.

    Rows already at the current schema version are copied by SQL; older ones are decoded
    again from their original bytes, so upcasters apply exactly as on the live path.
    """
    if not archive.exists():
        raise ReplayError(f"archive {archive} not found: pass the projector's DuckDB file")
    store = _fresh(out)
    try:
        store.conn.execute(f"ATTACH '{archive}' AS src (READ_ONLY)")
        current = " OR ".join(
            f"(type = '{name}' AND schemaversion = {cls.VERSION})"
            for name, cls in CATALOGUE.items()
        )
        cond = "TRUE" if until_cycle is None else f"(cycle IS NULL OR cycle <= {int(until_cycle)})"
        total = _scalar(store.conn, f"SELECT count(*) FROM src.events WHERE {cond}")
        cols = ", ".join(f'"{name}"' for name, _ in COLUMNS)
        counts = {"events": 0, "dead_letters": 0, "upcast": 0}
        bar = tqdm(total=total, desc="replay from archive", unit="ev", disable=not progress)
        for start in range(0, total, CHUNK):
            page = (f"FROM src.events WHERE {cond} ORDER BY topic, \"partition\", \"offset\" "
                    f"LIMIT {CHUNK} OFFSET {start}")
            counts["events"] += store.apply_query(
                f"SELECT {cols} FROM (SELECT * {page}) WHERE {current}"
            )
            stale = store.conn.execute(
                f'SELECT topic, "partition", "offset", raw FROM (SELECT * {page}) '
                f"WHERE NOT ({current})"
            ).fetchall()
            if stale:
                counts["upcast"] += len(stale)
                counts["events"] += store.apply(
                    [row(decode(raw), Position(t, p, o), raw) for t, p, o, raw in stale]
                )
            bar.update(min(CHUNK, total - start))
        bar.close()
        store.conn.execute("INSERT INTO dead_letters SELECT * FROM src.dead_letters")
        counts["dead_letters"] = _scalar(store.conn, "SELECT count(*) FROM dead_letters")
        store.conn.execute(
            "INSERT INTO tracking SELECT * FROM src.tracking WHERE topic LIKE '%.dlq'"
        )
        store.conn.execute("DETACH src")
        return counts
    finally:
        store.close()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    found = con.execute(sql).fetchone()
    return int(found[0]) if found else 0
