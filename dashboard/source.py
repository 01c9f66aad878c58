"""Where the dashboard's projection comes from (docs/design.md, 'The dashboard').

- `LiveSource` follows a running system the way any agent does: it subscribes to the log
  with its own projector (projections.projector.Projector) on an in-memory DuckDB and its
  own consumer group, from the earliest offset, in a background thread. It never touches a
  file another process writes.
- `FileSource` reads a finished run's file, opened read-only for each refresh and closed
  again. DuckDB refuses a read-only open while a writer holds the file: a live run's
  projector does, and the dashboard then says to follow the log with --bootstrap instead.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import duckdb

from dashboard import data
from projections.projector import Projector

T = TypeVar("T")


class SourceError(RuntimeError):
    """The projection cannot be read; the message says what to do."""


class Source(Protocol):
    label: str

    def snapshot(self) -> data.Snapshot: ...

    def close(self) -> None: ...


def _in_transaction(con: duckdb.DuckDBPyConnection,
                    read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """One consistent view of the projection for a whole refresh."""
    con.execute("BEGIN TRANSACTION")
    try:
        return read(con)
    finally:
        con.execute("ROLLBACK")


def locked_message(path: Path) -> str:
    return (f"{path} is held by a writer (a live run's projector): the dashboard never opens "
            "a file a projector is writing. Follow the run from the log instead: "
            "sleepwake ui --bootstrap HOST:PORT (the broker the run was started with, e.g. "
            "by `sleepwake broker`); or wait until the run ends and pass --db again.")


class FileSource:
    """A finished run's DuckDB file, opened read-only for each refresh."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = f"file {self.path} (read-only)"

    def connect(self) -> duckdb.DuckDBPyConnection:
        if not self.path.is_file():
            raise SourceError(f"{self.path} not found: pass a finished run's DuckDB file "
                              "(sleepwake run --db FILE) or --bootstrap HOST:PORT")
        try:
            return duckdb.connect(str(self.path), read_only=True)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise SourceError(locked_message(self.path)) from exc
            raise SourceError(f"cannot open {self.path}: {exc}") from exc
        except duckdb.Error as exc:
            raise SourceError(f"{self.path} is not a DuckDB projection: {exc}") from exc

    def check(self) -> None:
        """Fail now, with the reason, if the file cannot be shown."""
        con = self.connect()
        try:
            if "cycle_metrics" not in data.tables(con):
                raise SourceError(f"{self.path} is not a sleepwake projection "
                                  "(no cycle_metrics view)")
        finally:
            con.close()

    def snapshot(self) -> data.Snapshot:
        con = self.connect()
        try:
            return _in_transaction(con, data.snapshot)
        finally:
            con.close()

    def close(self) -> None:
        pass


class LiveSource:
    """The dashboard's own projection of the log, kept up to date in a background thread."""

    def __init__(self, bootstrap: str, *, group: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.group = group or f"sw-ui-{uuid.uuid4().hex[:12]}"
        self.label = f"log at {bootstrap} (own in-memory projection, group {self.group})"
        self._projector: Projector | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._read = threading.Lock()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._thread = threading.Thread(target=self._run, name="sleepwake-ui-projector",
                                        daemon=True)

    def start(self, timeout: float = 60.0) -> LiveSource:
        """Subscribe to the log; returns once the projector's consumers have started."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SourceError(f"no Kafka answered at {self.bootstrap} within {timeout:.0f}s: "
                              "is the broker running (sleepwake broker)?")
        if self._error is not None:
            raise SourceError(f"cannot follow the log at {self.bootstrap}: "
                              f"{type(self._error).__name__}: {self._error}") from self._error
        return self

    @property
    def applied(self) -> int:
        """Events this dashboard has projected so far."""
        return self._projector.applied if self._projector else 0

    def _run(self) -> None:
        try:
            asyncio.run(self._follow())
        except BaseException as exc:  # reported by start(), or on the next refresh
            self._error = exc
            self._ready.set()

    async def _follow(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        projector = Projector(":memory:", bootstrap=self.bootstrap, group=self.group,
                              observer=True)
        # A cursor is its own connection to the same in-memory database: it reads a committed
        # snapshot while the projector applies its next batch (used under `_read`).
        self._cursor = projector.store.conn.cursor()
        self._projector = projector
        try:
            await projector.prepare()
            await projector.broker.start()
            self._ready.set()
            await self._stop.wait()
        finally:
            await projector.broker.stop()

    def snapshot(self) -> data.Snapshot:
        if self._error is not None:
            raise SourceError(f"the dashboard's projector stopped: {self._error}")
        if self._cursor is None or not self._ready.is_set():
            raise SourceError("not subscribed yet")
        with self._read:
            return _in_transaction(self._cursor, data.snapshot)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=15)
        with self._read:
            if self._cursor is not None:
                self._cursor.close()
                self._cursor = None
            if self._projector is not None:
                self._projector.close()
