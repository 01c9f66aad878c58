"""The projector's store: one transaction per batch, idempotent by position and by id."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from events.codec import encode
from projections.digest import digests
from projections.rows import Position, row
from projections.store import Store
from tests.spine.helpers import rally_log


def _rows(events: list, topic: str = "sw.pinger.v1", start: int = 0, part: int = 0) -> list:
    return [row(e, Position(topic, part, start + i), encode(e)) for i, e in enumerate(events)]


def test_batch_applies_once_and_tracks_its_position(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    log = rally_log(3, 2)
    rows = _rows(log)
    assert store.apply(rows) == 12
    assert store.apply(rows) == 0  # same positions: skipped by tracking
    assert store.tracked() == {("sw.pinger.v1", 0): 11}
    moved = _rows(log, start=100)  # same ids at new positions: skipped by id
    assert store.apply(moved) == 0
    (pings,) = store.conn.execute("SELECT sum(pings) FROM rallies").fetchone() or (0,)
    assert pings == 6


def test_failed_batch_leaves_no_trace(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    rows = _rows(rally_log(1, 1))
    bad = [(*rows[0][:-2], "{not json", rows[0][-1])]
    with pytest.raises(duckdb.Error):
        store.apply(bad)
    assert store.tracked() == {}
    assert store.conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert store.apply(rows) == 2


def test_digest_ignores_row_order(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "a.duckdb"), Store(tmp_path / "b.duckdb")
    log = rally_log(4, 3)
    first, second = _rows(log[:6], part=0), _rows(log[6:], part=1)
    a.apply(first + second)
    b.apply(list(reversed(second)))  # partitions interleave differently on another read
    b.apply(list(reversed(first)))
    assert digests(a.conn) == digests(b.conn)
    assert a.tracked() == b.tracked() == {("sw.pinger.v1", 0): 5, ("sw.pinger.v1", 1): 17}
    assert digests(a.conn)["rallies"] != digests(Store(tmp_path / "c.duckdb").conn)["rallies"]
