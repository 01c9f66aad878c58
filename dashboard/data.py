"""What the dashboard shows, read from a projection with plain SQL into frozen records.

Every function takes an open DuckDB connection (a read-only file or a cursor on the
dashboard's own in-memory projection) and reads only the projector's tables
(projections/views.py, projections/store.py): nothing is recomputed from models or events.
A table the file does not have (an older run) reads as empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from events.vectors import decode_vector


@dataclass(frozen=True)
class CycleRow:
    """One served cycle: `cycle_metrics`, the cohort's gap mass, and who was away."""

    cycle: int
    queries: int
    graded: int
    accuracy: float | None
    escalation_rate: float | None
    cost_per_query: float | None
    gap_mass: float | None
    away: str  # members asleep or on canary while the cycle was served, e.g. "l0-a sleeping"


@dataclass(frozen=True)
class MemberState:
    """A member as cycle `cycle + 1` serves it (the control phase of `cycle` decides it)."""

    cycle: int
    model_id: str
    state: str  # WORKING, SLEEPING or CANARY
    version: int


@dataclass(frozen=True)
class CanaryStep:
    envelope_id: str
    cycle: int
    model_id: str
    version: int
    step: str  # CanaryStarted, TrafficShifted, Promoted or RolledBack
    share: float | None
    reason: str | None


@dataclass(frozen=True)
class Episode:
    """A sleep episode: its envelope, and its training run once it has one."""

    envelope_id: str
    model_id: str
    opened: int
    due_cycle: int | None
    closed: int | None
    reason: str | None  # promoted, rolled_back, failed, expired; None while open
    outcome: str | None  # completed or failed; None while training
    steps: int | None


@dataclass(frozen=True)
class Cell:
    """One gap-map cell of one cycle, with its centroid decoded."""

    cycle: int
    tier: int
    cell_id: str
    size: int
    demand: float
    cover: float
    solvable_up: float
    gap: float
    centroid: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class Curve:
    """A training run's loss heartbeats (`training_progress`), in step order."""

    envelope_id: str
    steps: list[int]
    losses: list[float]
    total: int  # the step budget the heartbeats count towards


@dataclass(frozen=True)
class DeadLetterRow:
    consumer: str
    topic: str
    partition: int
    offset: int | None
    reason: str
    detail: str


@dataclass(frozen=True)
class Snapshot:
    """Everything one refresh shows, read in one transaction."""

    events: int
    cycles: list[CycleRow]
    states: list[MemberState]
    canaries: list[CanaryStep]
    episodes: list[Episode]
    cells: list[Cell]
    curves: list[Curve]
    dead_letters: list[DeadLetterRow]  # the latest, at most DEAD_LETTERS
    dead_letter_count: int

    @property
    def key(self) -> tuple[int, int]:
        """Changes whenever anything shown can have changed (the projection only grows)."""
        return (self.events, self.dead_letter_count)


#: Dead letters listed on the page (the count covers all of them).
DEAD_LETTERS = 50


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views of the projection."""
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
            .fetchall()}


def cycles(con: duckdb.DuckDBPyConnection, have: set[str]) -> list[CycleRow]:
    if "cycle_metrics" not in have:
        return []
    mass = ("(SELECT g.gap_mass FROM gap_maps g WHERE g.cycle = m.cycle AND g.tier = 0)"
            if "gap_maps" in have else "NULL")
    away = ("""(SELECT string_agg(s.model_id || ' ' || lower(s.state), ', '
                                  ORDER BY s.model_id)
               FROM member_states s WHERE s.cycle = m.cycle - 1 AND s.state <> 'WORKING')"""
            if "member_states" in have else "NULL")
    rows = con.execute(f"""SELECT m.cycle, m.queries, m.graded, m.accuracy, m.escalation_rate,
                                  m.cost_per_query, {mass}, {away}
                           FROM cycle_metrics m ORDER BY m.cycle""").fetchall()
    return [CycleRow(int(c), int(q), int(g), _opt(a), _opt(e), _opt(cost), _opt(gm), w or "")
            for c, q, g, a, e, cost, gm, w in rows]


def states(con: duckdb.DuckDBPyConnection, have: set[str]) -> list[MemberState]:
    if "member_states" not in have:
        return []
    rows = con.execute("SELECT cycle, model_id, state, coalesce(version, 0) FROM member_states "
                       "ORDER BY cycle, model_id").fetchall()
    return [MemberState(int(c), m, s, int(v)) for c, m, s, v in rows]


def canaries(con: duckdb.DuckDBPyConnection, have: set[str]) -> list[CanaryStep]:
    if "canary_steps" not in have:
        return []
    rows = con.execute("SELECT envelope_id, cycle, model_id, coalesce(version, 0), step, share, "
                       "reason FROM canary_steps ORDER BY cycle, envelope_id").fetchall()
    return [CanaryStep(e, int(c), m, int(v), s, _opt(sh), r) for e, c, m, v, s, sh, r in rows]


def episodes(con: duckdb.DuckDBPyConnection, have: set[str]) -> list[Episode]:
    if not {"envelopes", "training_runs"} <= have:
        return []
    rows = con.execute("""SELECT e.envelope_id, e.model_id, e.opened, e.due_cycle, e.closed,
                                 e.reason, t.outcome, t.steps
                          FROM envelopes e LEFT JOIN training_runs t USING (envelope_id)
                          WHERE e.model_id IS NOT NULL AND e.opened IS NOT NULL
                          ORDER BY e.opened, e.envelope_id""").fetchall()
    return [Episode(e, m, int(o), _int(d), _int(c), r, out, _int(s))
            for e, m, o, d, c, r, out, s in rows]


def cells(con: duckdb.DuckDBPyConnection, have: set[str]) -> list[Cell]:
    if "gap_cells" not in have:
        return []
    rows = con.execute("SELECT cycle, tier, cell_id, size, demand, cover, solvable_up, gap, "
                       "centroid FROM gap_cells ORDER BY cycle, tier, cell_id").fetchall()
    return [Cell(int(c), int(t), i, int(s), float(d), float(cv), float(up), float(g),
                 decode_vector(v)) for c, t, i, s, d, cv, up, g, v in rows]


def curves(con: duckdb.DuckDBPyConnection, have: set[str]) -> list[Curve]:
    if "training_progress" not in have:
        return []
    rows = con.execute("""SELECT envelope_id, list(step ORDER BY step), list(loss ORDER BY step),
                                 max(steps)
                          FROM training_progress GROUP BY envelope_id
                          ORDER BY envelope_id""").fetchall()
    return [Curve(e, [int(s) for s in steps], [float(x) for x in losses], int(total or 0))
            for e, steps, losses, total in rows]


def dead_letters(con: duckdb.DuckDBPyConnection, have: set[str],
                 limit: int = DEAD_LETTERS) -> tuple[list[DeadLetterRow], int]:
    """The latest `limit` dead letters (by topic position) and how many there are."""
    if "dead_letters" not in have:
        return [], 0
    found = con.execute("SELECT count(*) FROM dead_letters").fetchone()
    rows = con.execute("""SELECT consumer, topic, "partition", "offset", reason, detail
                          FROM dead_letters
                          ORDER BY "offset" DESC NULLS LAST, topic, "partition", consumer
                          LIMIT ?""", [limit]).fetchall()
    return ([DeadLetterRow(c, t, int(p), _int(o), r, d or "") for c, t, p, o, r, d in rows],
            int(found[0]) if found else 0)


def events(con: duckdb.DuckDBPyConnection, have: set[str]) -> int:
    if "events" not in have:
        return 0
    found = con.execute("SELECT count(*) FROM events").fetchone()
    return int(found[0]) if found else 0


def snapshot(con: duckdb.DuckDBPyConnection) -> Snapshot:
    """Read everything one refresh shows (the caller holds the transaction, if any)."""
    have = tables(con)
    letters, count = dead_letters(con, have)
    return Snapshot(
        events=events(con, have), cycles=cycles(con, have), states=states(con, have),
        canaries=canaries(con, have), episodes=episodes(con, have), cells=cells(con, have),
        curves=curves(con, have), dead_letters=letters, dead_letter_count=count,
    )


@dataclass(frozen=True)
class Plane:
    """Points projected onto the first two principal components of their vectors."""

    xy: np.ndarray  # (n, 2)
    explained: tuple[float, float]  # share of the variance along each axis


def pca_2d(vectors: np.ndarray) -> Plane:
    """Principal-component projection to 2-D (numpy SVD), with each axis's sign fixed so the
    largest loading is positive: the same vectors always land in the same places. Fewer than
    two distinct vectors land at the origin."""
    x = np.asarray(vectors, dtype=np.float64)
    xy = np.zeros((len(x), 2))
    if len(x) < 2:
        return Plane(xy, (0.0, 0.0))
    centred = x - x.mean(axis=0)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    total = float((sing ** 2).sum())
    if total <= 1e-18:
        return Plane(xy, (0.0, 0.0))
    k = min(2, len(sing))
    comps = vt[:k]
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    xy[:, :k] = centred @ (comps * signs[:, None]).T
    share = [float(s ** 2 / total) for s in sing[:k]] + [0.0] * (2 - k)
    return Plane(xy, (share[0], share[1]))


def summary(snap: Snapshot) -> dict[str, Any]:
    """The page's numbers as JSON (GET /api/summary): what a script or a test compares."""
    return {
        "events": snap.events,
        "dead_letters": snap.dead_letter_count,
        "cycles": [{"cycle": r.cycle, "queries": r.queries, "graded": r.graded,
                    "accuracy": r.accuracy, "escalation_rate": r.escalation_rate,
                    "cost_per_query": r.cost_per_query, "gap_mass": r.gap_mass,
                    "away": r.away} for r in snap.cycles],
        "episodes": [{"envelope_id": e.envelope_id, "model_id": e.model_id, "opened": e.opened,
                      "due_cycle": e.due_cycle, "closed": e.closed, "reason": e.reason,
                      "outcome": e.outcome} for e in snap.episodes],
    }


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
