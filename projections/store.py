"""The single DuckDB writer: archive, tracking and views, one transaction per batch.

Exactly-once by tracking (as eventsourcing's Follower): a batch's view rows, its archive rows
and its tracking positions commit together; positions at or below the tracked offset and
event ids already archived are skipped, so redelivery changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from events.deadletter import DeadLetter
from projections.rows import COLUMNS, Position
from projections.views import DERIVED, VIEWS, View

PROJECTION = "main"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS events ("
    + ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
    + ", PRIMARY KEY (id))",
    """CREATE TABLE IF NOT EXISTS tracking (
        projection VARCHAR, topic VARCHAR, "partition" INTEGER, "offset" BIGINT,
        PRIMARY KEY (projection, topic, "partition"))""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        consumer VARCHAR, topic VARCHAR, "partition" INTEGER, "offset" BIGINT,
        reason VARCHAR, detail VARCHAR, "key" VARCHAR, original BLOB, digest VARCHAR,
        PRIMARY KEY (consumer, topic, "partition", "offset", digest))""",
)

_SELECT_PARAMS = ", ".join(
    f"unnest(${i + 1})::{kind} AS \"{name}\"" for i, (name, kind) in enumerate(COLUMNS)
)
_COLS = ", ".join(f'"{name}"' for name, _ in COLUMNS)


class Store:
    """A projection database file (or ":memory:")."""

    def __init__(self, path: str | Path, views: Sequence[View] = VIEWS) -> None:
        self.path = str(path)
        self.views = tuple(views)
        self.conn = duckdb.connect(self.path)
        for ddl in (*SCHEMA, *(v.ddl for v in self.views), *DERIVED):
            self.conn.execute(ddl)
        self.conn.execute(
            "INSERT INTO meta VALUES ('instance', ?) ON CONFLICT DO NOTHING", [str(uuid.uuid4())]
        )

    @property
    def instance(self) -> str:
        """A random id made with the file: a new file is a new consumer group (replays from 0)."""
        found = self.conn.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
        assert found is not None
        return str(found[0])

    def close(self) -> None:
        self.conn.close()

    def tracked(self) -> dict[tuple[str, int], int]:
        rows = self.conn.execute(
            'SELECT topic, "partition", "offset" FROM tracking WHERE projection = ?', [PROJECTION]
        ).fetchall()
        return {(t, p): o for t, p, o in rows}

    def apply(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Project a batch of archive rows (see projections.rows.row); returns events applied."""
        if not rows:
            return 0
        columns = [list(col) for col in zip(*rows, strict=True)]
        return self._apply(f"SELECT {_SELECT_PARAMS}", columns)

    def apply_query(self, query: str, params: Sequence[Any] = ()) -> int:
        """Project a batch selected by SQL with the archive's columns (replay from an archive)."""
        return self._apply(query, list(params))

    def _apply(self, select: str, params: list[Any]) -> int:
        con = self.conn
        con.execute("BEGIN")
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE batch AS {select}", params)
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE new_events AS
                SELECT {_COLS} FROM batch b
                WHERE NOT EXISTS (SELECT 1 FROM tracking t WHERE t.projection = '{PROJECTION}'
                      AND t.topic = b.topic AND t."partition" = b."partition"
                      AND b."offset" <= t."offset")
                  AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = b.id)
                QUALIFY row_number() OVER (
                    PARTITION BY id ORDER BY topic, "partition", "offset") = 1"""
            )
            con.execute(f"INSERT INTO events SELECT {_COLS} FROM new_events")
            for view in self.views:
                for statement in view.apply:
                    con.execute(statement)
            self._track("batch")
            applied = con.execute("SELECT count(*) FROM new_events").fetchone()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(applied[0]) if applied else 0

    def _track(self, table: str) -> None:
        self.conn.execute(
            f"""INSERT INTO tracking
            SELECT '{PROJECTION}', topic, "partition", max("offset") FROM {table}
            WHERE "offset" IS NOT NULL GROUP BY ALL
            ON CONFLICT (projection, topic, "partition")
            DO UPDATE SET "offset" = greatest(tracking."offset", excluded."offset")"""
        )

    def apply_dead_letters(self, letters: Sequence[tuple[DeadLetter, Position]]) -> int:
        """Record dead letters (keyed by who rejected what, so redelivery adds nothing)."""
        if not letters:
            return 0
        con = self.conn
        con.execute("BEGIN")
        try:
            before = _count(con, "dead_letters")
            con.executemany(
                "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(d.consumer, d.topic, d.partition, d.offset, d.reason, d.detail, d.key,
                  d.original(), d.digest()) for d, _ in letters],
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE dl_batch AS "
                'SELECT unnest($1) AS topic, unnest($2) AS "partition", unnest($3) AS "offset"',
                [[p.topic for _, p in letters], [p.partition for _, p in letters],
                 [p.offset for _, p in letters]],
            )
            self._track("dl_batch")
            added = _count(con, "dead_letters") - before
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return added


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    found = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0]) if found else 0
