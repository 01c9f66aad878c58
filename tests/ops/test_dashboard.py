"""The dashboard's pure parts on a small projection made by hand: the SQL reads, the 2-D
projection of the gap map, the figures, the page's tables and JSON, and the refusal of a file
a writer holds. Fast: no broker, no browser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from dash import html
from typer.testing import CliRunner

from cli.main import app as cli
from dashboard import data, figures
from dashboard.app import cycle_table, dead_letter_table, make_app
from dashboard.source import FileSource, SourceError
from events.vectors import decode_vector, encode_vector
from projections.store import Store


def _unit(*xs: float) -> np.ndarray:
    vec = np.zeros(384, dtype=np.float32)
    vec[: len(xs)] = xs
    return vec / np.linalg.norm(vec)


CENTROIDS = {"cell-0": _unit(1, 0, 0), "cell-1": _unit(0, 1, 0), "cell-2": _unit(0, 0, 1)}


def make_projection(path: Path) -> Path:
    """Two cycles of a run: 6 queries, one escalation, a sleep episode with a canary, two gap
    maps, training heartbeats and one dead letter, written into the projector's tables."""
    store = Store(path)  # the projector's schema, views included
    con = store.conn
    queries = [("q0", 0, True, True), ("q1", 0, True, False), ("q2", 0, True, False),
               ("q3", 0, False, False), ("q4", 1, True, False), ("q5", 1, True, False)]
    for qid, cycle, ok, escalated in queries:
        con.execute("INSERT INTO q_received VALUES (?, ?, 'gcd: 4 6', 'gcd', 'easy', false, "
                    "0.001)", [qid, cycle])
        con.execute("INSERT INTO q_answers VALUES (?, 'l0-a', 0, '2', 0.5, 0.5, 1e3, false)",
                    [qid])
        final = "l0-a"
        if escalated:
            con.execute("INSERT INTO q_escalated VALUES (?, 'l0-a', 0, 'escalate', 0.2, 0.3, "
                        "0.8)", [qid])
            con.execute("INSERT INTO q_answers VALUES (?, 'top', 1, '2', 0.9, 1.0, 2e3, false)",
                        [qid])
            final = "top"
        con.execute("INSERT INTO q_accepted VALUES (?, ?, 0, 'accept', 0.9, 0.0, 0.8)",
                    [qid, final])
        con.execute("INSERT INTO q_grades VALUES (?, ?, true, false, ?, ?, 'reference')",
                    [qid, final, float(ok), ok])
    for cycle in (0, 1):
        con.execute("INSERT INTO gap_maps VALUES (?, 0, ?, 3, 10, 0.0, 0.5, '{}')",
                    [cycle, 0.3 - 0.1 * cycle])
        for i, (cell, vec) in enumerate(CENTROIDS.items()):
            con.execute("INSERT INTO gap_cells VALUES (?, 0, ?, ?, ?, 0.1, 0.9, ?, 0.4, ?)",
                        [cycle, cell, 4 + i, 0.2 + 0.1 * i, 0.05 * (i + 1) + 0.1 * cycle,
                         encode_vector(vec)])
    for cycle, state in ((0, "SLEEPING"), (1, "CANARY")):
        con.execute("INSERT INTO member_states VALUES (?, 'l0-a', ?, 0, NULL), "
                    "(?, 'l0-b', 'WORKING', 0, NULL)", [cycle, state, cycle])
    con.execute("INSERT INTO envelopes VALUES ('env-0', 0, 0, NULL, NULL, 10, 20, 'l0-a', 1, 30, "
                "0.5, '[]')")
    con.execute("INSERT INTO training_runs VALUES ('env-0', 'l0-a', 1, 'completed', 1, 30, 1e6, "
                "12, 'abc', '[]', '{}', NULL)")
    con.execute("INSERT INTO canary_steps VALUES ('env-0', 1, 'l0-a', 1, 'CanaryStarted', 0.02, "
                "0.3, 0.0, 'gate passed')")
    for step, loss in ((10, 0.9), (20, 0.5), (30, 0.4)):
        con.execute("INSERT INTO training_progress VALUES ('env-0', ?, 30, ?)", [step, loss])
    con.execute("INSERT INTO dead_letters VALUES ('projector', 'sw.gateway.v1.dlq', 0, 7, "
                "'undecodable', 'not a dead letter: ValidationError', NULL, NULL, 'd1')")
    store.close()
    return path


@pytest.fixture(scope="module")
def projection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_projection(tmp_path_factory.mktemp("dash") / "run.duckdb")


@pytest.fixture(scope="module")
def snap(projection: Path) -> data.Snapshot:
    return FileSource(projection).snapshot()


def test_the_snapshot_reads_the_projection(snap: data.Snapshot) -> None:
    assert [(r.cycle, r.queries, r.graded) for r in snap.cycles] == [(0, 4, 4), (1, 2, 2)]
    first, second = snap.cycles
    assert first.accuracy == pytest.approx(0.75) and second.accuracy == pytest.approx(1.0)
    assert first.escalation_rate == pytest.approx(0.25) and second.escalation_rate == 0
    assert first.cost_per_query == pytest.approx((1.5 + 3 * 0.5) / 4 + 0.001)
    assert (first.gap_mass, second.gap_mass) == (pytest.approx(0.3), pytest.approx(0.2))
    assert (first.away, second.away) == ("", "l0-a sleeping")  # the control phase of cycle 0
    assert [(s.cycle, s.model_id, s.state) for s in snap.states][:2] == [
        (0, "l0-a", "SLEEPING"), (0, "l0-b", "WORKING")]
    assert [(e.envelope_id, e.model_id, e.opened, e.due_cycle, e.outcome)
            for e in snap.episodes] == [("env-0", "l0-a", 0, 1, "completed")]
    assert [(c.step, c.share) for c in snap.canaries] == [("CanaryStarted", 0.02)]
    assert len(snap.cells) == 6
    np.testing.assert_allclose(snap.cells[1].centroid, decode_vector(encode_vector(
        CENTROIDS["cell-1"])))
    assert [(c.envelope_id, c.steps, c.losses, c.total) for c in snap.curves] == [
        ("env-0", [10, 20, 30], [0.9, 0.5, 0.4], 30)]
    assert snap.dead_letter_count == 1 and snap.dead_letters[0].reason == "undecodable"
    assert snap.events == 0  # rows written by hand, not through the archive


def test_a_projection_without_the_sleep_tables_reads_as_empty(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE events (id INTEGER)")
    con.close()
    snap = FileSource(tmp_path / "old.duckdb").snapshot()
    assert snap.cycles == [] and snap.cells == [] and snap.dead_letter_count == 0


def test_pca_keeps_a_planar_layout_and_its_orientation() -> None:
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(2, 384))
    points = rng.normal(size=(12, 2)) @ plane  # 12 points on a 2-D plane in 384-D
    got = data.pca_2d(points)
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(got.xy[:, None] - got.xy[None], axis=-1), dist,
                               atol=1e-8)  # nothing of a planar layout is lost
    assert sum(got.explained) == pytest.approx(1.0)
    again = data.pca_2d(points[::-1])
    np.testing.assert_allclose(again.xy[::-1], got.xy, atol=1e-8)  # same places, any order
    assert data.pca_2d(points[:1]).xy.tolist() == [[0.0, 0.0]]
    assert data.pca_2d(np.zeros((0, 384))).xy.shape == (0, 2)
    assert data.pca_2d(np.stack([points[0]] * 3)).explained == (0.0, 0.0)


def test_the_gap_map_shows_one_cycle_on_axes_shared_by_all(snap: data.Snapshot) -> None:
    latest = figures.gap_map(snap.cells, None)
    first = figures.gap_map(snap.cells, 0)
    assert "cycle 1" in latest.layout.title.text and "cycle 0" in first.layout.title.text
    (trace,) = latest.data
    assert list(trace.text) == ["cell-0", "cell-1", "cell-2"]
    assert list(trace.marker.color) == pytest.approx([0.15, 0.2, 0.25])  # G of cycle 1
    assert trace.marker.cmax == pytest.approx(0.25) and trace.marker.cmin == 0
    assert first.layout.xaxis.range == latest.layout.xaxis.range  # the map does not jump
    np.testing.assert_allclose(first.data[0].x, trace.x)  # same centroids, same places
    assert "no cells" in figures.gap_map(snap.cells, 7).layout.annotations[0].text


def test_states_metrics_and_training_figures(snap: data.Snapshot) -> None:
    states = figures.states(snap.states, snap.canaries)
    bars = {t.name: t for t in states.data if t.type == "bar"}
    assert set(bars) == {"working", "sleeping", "canary"}
    assert list(bars["sleeping"].y) == ["l0-a"] and list(bars["sleeping"].base) == [0.5]
    (marker,) = [t for t in states.data if t.type == "scatter"]
    assert marker.name == "canary started" and list(marker.x) == [2]  # decided at 1, serves 2
    metrics = figures.metrics(snap.cycles, snap.episodes)
    assert [t.name for t in metrics.data] == ["accuracy", "escalation rate", "cost / query",
                                              "gap mass"]
    assert list(metrics.data[0].y) == pytest.approx([0.75, 1.0])
    assert len(metrics.layout.shapes) == 1  # asleep from cycle 1; its canary starts after 1
    training = figures.training(snap.curves, snap.episodes)
    assert [t.name for t in training.data] == ["env-0 · l0-a (slept at 0)"]
    for fig in (figures.metrics([], []), figures.states([], []), figures.gap_map([], None),
                figures.training([], [])):
        assert not fig.data and fig.layout.annotations  # says why it is empty


def _texts(component: object) -> list[str]:
    """Every string inside a Dash component tree, in order."""
    if isinstance(component, str):
        return [component]
    children = getattr(component, "children", None)
    if isinstance(component, list):
        return [t for c in component for t in _texts(c)]
    return _texts(children) if children is not None else []


def test_the_page_tables_and_json(projection: Path, snap: data.Snapshot) -> None:
    table = cycle_table(snap.cycles)
    body = table[1]
    assert isinstance(body, html.Tbody)
    assert [row.id for row in body.children] == ["cycle-1", "cycle-0"]  # latest first
    assert _texts(body.children[1]) == ["0", "4", "4", "0.750", "0.250", "0.751", "0.300", ""]
    letters = _texts(dead_letter_table(snap.dead_letters, snap.dead_letter_count))
    assert letters[0] == "1 dead letter" and "undecodable" in letters
    assert "No dead letters" in _texts(dead_letter_table([], 0))[0]
    client = make_app(FileSource(projection)).server.test_client()
    got = client.get("/api/summary").get_json()
    assert [c["accuracy"] for c in got["cycles"]] == pytest.approx([0.75, 1.0])
    assert got["dead_letters"] == 1 and got["episodes"][0]["envelope_id"] == "env-0"
    assert "read-only" in got["source"]


def test_a_file_a_writer_holds_is_refused_with_the_way_out(tmp_path: Path) -> None:
    db = make_projection(tmp_path / "live.duckdb")
    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "open"
        with pytest.raises(SourceError, match="--bootstrap"):
            FileSource(db).check()
        client = make_app(FileSource(db)).server.test_client()
        answer = client.get("/api/summary")
        assert answer.status_code == 503 and "--bootstrap" in answer.get_json()["error"]
    finally:
        writer.kill()
        writer.wait()
    FileSource(db).check()  # the writer is gone: the file is shown


def test_the_command_wants_exactly_one_source(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in ([], ["--db", "x.duckdb", "--bootstrap", "127.0.0.1:9"]):
        done = runner.invoke(cli, ["ui", *args])
        assert done.exit_code == 2 and "exactly one of --db" in done.output
    done = runner.invoke(cli, ["ui", "--db", str(tmp_path / "none.duckdb")])
    assert done.exit_code == 2 and "not found" in done.output
