"""What `sleepwake run --resume` rebuilds from a run's file, and what it refuses.

The whole path (Ctrl-C, then resume on a fresh broker, same ids and digests) runs in
tests/wake/test_processes.py; here the parts: the log rebuilt at its positions over the
real broker, gaps filled, groups placed, and the refusals with their reasons.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cli.main import app
from events.deadletter import DeadLetter
from events.topology import dead_letter_of, event_topics
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
from runtime.embedded import EmbeddedBroker
from runtime.positions import (
    LogRecord,
    RestoreError,
    end_offsets,
    group_positions,
    set_group_positions,
    write_back,
)

TOPIC = event_topics()[0]


def archive(db: Path, offsets: list[int], letters: dict[int, bytes]) -> None:
    """Events of TOPIC[0] at `offsets` and projector dead letters at the `letters` ones."""
    store = Store(db)
    try:
        for offset in offsets:
            store.conn.execute(
                "INSERT INTO events (id, topic, \"partition\", \"offset\", type, subject, raw) "
                "VALUES (uuid(), ?, 0, ?, 'X', ?, ?)", [TOPIC, offset, f"s{offset}",
                                                       f"event {offset}".encode()])
        for offset, original in letters.items():
            store.conn.execute(
                "INSERT INTO dead_letters VALUES ('projector', ?, 0, ?, 'undecodable', 'junk', "
                "'k', ?, 'd')", [TOPIC, offset, original])
    finally:
        store.close()


def test_the_log_is_rebuilt_at_its_positions_with_gaps_filled(tmp_path: Path) -> None:
    db = tmp_path / "run.duckdb"
    archive(db, [0, 1, 3, 5], {2: b"junk"})  # 4: a second copy the projector skipped
    con = duckdb.connect(str(db), read_only=True)
    records = list(event_log(con, {(TOPIC, 0): 7, (TOPIC, 1): 0}))
    letters = list(dead_letter_log(con))
    con.close()
    assert [(r.offset, r.value) for r in records] == [
        (0, b"event 0"), (1, b"event 1"), (2, b"junk"), (3, b"event 3"), (4, b"event 3"),
        (5, b"event 5"), (6, b"event 5")]
    assert [r.key for r in records][:3] == [b"s0", b"s1", b"k"]
    (letter,) = letters
    assert letter.topic == dead_letter_of(TOPIC) and letter.partition is None
    read = DeadLetter.model_validate_json(letter.value)
    assert (read.offset, read.original(), read.digest()) == (2, b"junk", "d")


def test_a_partition_with_records_and_no_archive_cannot_be_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "run.duckdb"
    archive(db, [], {})
    con = duckdb.connect(str(db), read_only=True)
    with pytest.raises(NotResumable, match="none is archived"):
        list(event_log(con, {(TOPIC, 2): 3}))
    con.close()


def test_only_a_clean_stop_can_be_resumed(tmp_path: Path) -> None:
    db = tmp_path / "run.duckdb"
    archive(db, [0], {})
    con = duckdb.connect(str(db), read_only=True)
    with pytest.raises(NotResumable, match="not stopped cleanly"):
        saved_stop(con)
    con.close()
    save_stop(db, {"sw-selector": {(TOPIC, 0): 1}}, {(TOPIC, 0): 1})
    con = duckdb.connect(str(db), read_only=True)
    assert saved_stop(con) == ({"sw-selector": {(TOPIC, 0): 1}}, {(TOPIC, 0): 1})
    con.close()
    clear_stop(db)  # a later stop that was not clean forgets it
    con = duckdb.connect(str(db), read_only=True)
    with pytest.raises(NotResumable):
        saved_stop(con)
    con.close()


@pytest.mark.broker
def test_records_land_at_their_offsets_and_groups_where_they_stood(
    kafka: EmbeddedBroker,
) -> None:
    ensure_topics(kafka.bootstrap, 3, ["t"])
    write_back(kafka.bootstrap, [LogRecord("t", p, o, b"k", b"v") for p in (1, 2)
                                 for o in range(3 * p)])  # sent in batches
    assert end_offsets(kafka.bootstrap, ["t"]) == {("t", 0): 0, ("t", 1): 3, ("t", 2): 6}
    set_group_positions(kafka.bootstrap, {"sw-x": {("t", 1): 2, ("t", 2): 6}})
    assert group_positions(kafka.bootstrap) == {"sw-x": {("t", 1): 2, ("t", 2): 6}}
    with pytest.raises(RestoreError, match="needs an empty broker"):
        write_back(kafka.bootstrap, [LogRecord("t", 2, 0, None, b"v")])


def test_resume_takes_the_configuration_from_the_log_and_refuses_overrides(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    got = runner.invoke(app, ["run", "--resume", str(tmp_path), "--cycles", "5"])
    assert got.exit_code == 2 and "drop --cycles" in got.output
    got = runner.invoke(app, ["run", "--resume", str(tmp_path)])
    assert got.exit_code == 2 and "neither a run's report directory" in got.output
