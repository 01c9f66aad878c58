"""Order-free content hashes of tables: what "two replays give identical tables" compares."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import duckdb

from projections.resumable import TABLES

#: Tables that record *where* events were read rather than what they say (a stopped run's
#: positions included: projections.resumable).
POSITIONAL = ("tracking", "meta", *TABLES)


def table_digest(con: duckdb.DuckDBPyConnection, table: str, exclude: Iterable[str] = ()) -> str:
    """sha256 of the table's rows, sorted, with the `exclude` columns left out."""
    skip = set(exclude)
    cols = [
        r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table]
        ).fetchall() if r[0] not in skip
    ]
    select = ", ".join(f'"{c}"::VARCHAR' for c in cols)
    digest = hashlib.sha256()
    for (line,) in con.execute(
        f"SELECT concat_ws(chr(31), {select}) AS line FROM {table} ORDER BY line"
    ).fetchall():
        digest.update(str(line).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def digests(
    con: duckdb.DuckDBPyConnection, exclude_columns: Iterable[str] = ()
) -> dict[str, str]:
    """Digest of every content table (not the POSITIONAL ones)."""
    skip = tuple(exclude_columns)
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall() if r[0] not in POSITIONAL]
    return {t: table_digest(con, t, skip) for t in tables}
