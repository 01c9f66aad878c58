"""Gap cartographer: where a cohort fails on traffic the tier above could serve (the gap map).

For each closed cycle and each tier below the top it decides the cells of the recent traffic
and, per cell, G = demand·(1 - cover)·solvable_up, plus each member's hardness Σ G·(1 - P̂_M):
what the envelope broker needs to choose who sleeps and on what. Cover is the best member's
success, since a cell one member masters is routing's job, not sleep's. Cells keep their ids
while their centroids stay put, so the sleep agents can follow them across cycles.

It waits until the grader has closed the cycle and every grade and query of it is in
(agents.cycles), so each map is a function of the log whatever the interleaving; rows are
clustered in (cycle, query) order and floats rounded, so a replay gives the same map bit for
bit. Memory is bounded by the window of cycles it clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

import hdbscan
import numpy as np
from sklearn.metrics import adjusted_rand_score

from agents.cohort import Cohort
from agents.cycles import Closure
from events.control import GapCell, GapIndexUpdated
from events.serving import CycleGraded, QueryReceived, ResponseGraded
from events.vectors import decode_vector, encode_vector
from runtime.policy import AnyEnvelope, Emit, Policy

NOISE = -1
DIGITS = 6


@dataclass(frozen=True)
class CartographyConfig:
    window_cycles: int = 6
    min_cluster_size: int = 8
    match_radius: float = 0.35  # a new cell this close to an old one keeps its id
    prior: float = 2.0  # pseudo-counts of the success-rate prior


class Row(NamedTuple):
    """A window query: its embedding (encoded: arrays in frozen state break ==), its label."""

    embedding: str
    label: str | None  # "family|level" of a benchmark query, for the ARI only


class Grade(NamedTuple):
    """One answer's grade (non-final: routed and shadow answers alike)."""

    query_id: str
    model_id: str
    tier: int
    success: bool


class CellRef(NamedTuple):
    cell_id: str
    centroid: str  # encoded


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class State:
    closure: Closure = field(default_factory=Closure)
    queries: MappingProxyType[int, MappingProxyType[str, Row]] = field(default_factory=_empty)
    grades: MappingProxyType[int, tuple[Grade, ...]] = field(default_factory=_empty)
    cells: MappingProxyType[int, tuple[CellRef, ...]] = field(default_factory=_empty)  # per tier
    issued: MappingProxyType[int, int] = field(default_factory=_empty)  # cell ids used, per tier


class Window(NamedTuple):
    """The window's rows in (cycle, query) order, clustered."""

    ids: tuple[str, ...]
    x: np.ndarray  # (n, d) float64
    labels: np.ndarray  # (n,) HDBSCAN labels, NOISE outside every cell
    truth: tuple[str | None, ...]
    grades: tuple[Grade, ...]  # grades of the window's queries, sorted


def cluster(x: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN labels of the rows of x; all noise when there are too few rows for a cell."""
    if len(x) < min_cluster_size:
        return np.full(len(x), NOISE, dtype=np.int64)
    model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, core_dist_n_jobs=1)
    return np.asarray(model.fit_predict(x), dtype=np.int64)


def window(state: State, cycle: int, cfg: CartographyConfig) -> Window:
    cycles = [c for c in sorted(state.queries) if cycle - cfg.window_cycles < c <= cycle]
    rows = [(qid, state.queries[c][qid]) for c in cycles for qid in sorted(state.queries[c])]
    known = {qid for qid, _ in rows}
    grades = sorted(g for c in cycles for g in state.grades.get(c, ()) if g.query_id in known)
    x = (np.vstack([decode_vector(r.embedding) for _, r in rows]).astype(np.float64)
         if rows else np.zeros((0, 0)))
    return Window(tuple(q for q, _ in rows), x, cluster(x, cfg.min_cluster_size),
                  tuple(r.label for _, r in rows), tuple(grades))


def _rate(s: int, n: int, prior: float, mean: float) -> float:
    return (s + prior * mean) / (n + prior) if n + prior > 0 else mean


def _count(grades: Sequence[Grade]) -> tuple[int, int]:
    return sum(g.success for g in grades), len(grades)


def _match(new: Sequence[np.ndarray], old: Sequence[CellRef], radius: float
           ) -> dict[int, str]:
    """Old ids kept by new clusters: closest pairs first, one to one, within `radius`."""
    pairs = sorted(
        (float(np.linalg.norm(c - decode_vector(ref.centroid))), ref.cell_id, i)
        for i, c in enumerate(new) for ref in old
    )
    kept: dict[int, str] = {}
    for d, cell_id, i in pairs:
        if d <= radius and i not in kept and cell_id not in kept.values():
            kept[i] = cell_id
    return kept


def _ari(w: Window) -> float | None:
    have = [i for i, t in enumerate(w.truth) if t is not None]
    if not have:
        return None
    score = adjusted_rand_score([w.truth[i] for i in have], [int(w.labels[i]) for i in have])
    return round(float(score), DIGITS)


def gap_map(cohort: Cohort, cfg: CartographyConfig, state: State, cycle: int, tier: int,
            w: Window) -> tuple[GapIndexUpdated, State]:
    """The gap map of `tier` for `cycle` over window `w`, and the state with its cell ids."""
    members = sorted(m.model_id for m in cohort.tier(tier))
    by_member = {m: [g for g in w.grades if g.model_id == m] for m in members}
    mean = {m: (_count(gs)[0] + 1) / (_count(gs)[1] + 2) for m, gs in by_member.items()}
    s_tier, n_tier = _count([g for g in w.grades if g.tier == tier])
    tier_rate = (s_tier + 1) / (n_tier + 2)

    clusters = sorted(int(k) for k in set(w.labels.tolist()) - {NOISE})
    centroids = [decode_vector(encode_vector(w.x[w.labels == k].mean(axis=0))).astype(np.float64)
                 for k in clusters]
    kept = _match(centroids, state.cells.get(tier, ()), cfg.match_radius)
    issued = state.issued.get(tier, 0)
    ids: list[str] = []
    for i in range(len(clusters)):
        if i in kept:
            ids.append(kept[i])
        else:
            ids.append(f"cell-{issued}")
            issued += 1

    n = len(w.ids)
    cells: list[GapCell] = []
    hardness = dict.fromkeys(members, 0.0)
    for k, cell_id, centroid in zip(clusters, ids, centroids, strict=True):
        inside = w.labels == k
        qids = {q for q, m in zip(w.ids, inside.tolist(), strict=True) if m}
        grades = [g for g in w.grades if g.query_id in qids]
        evidence = {m: _count([g for g in grades if g.model_id == m]) for m in members}
        p_hat = {m: _rate(s, t, cfg.prior, mean[m]) for m, (s, t) in evidence.items()}
        seen = {m: p for m, p in p_hat.items() if evidence[m][1] >= 1}
        cover = max(seen.values()) if seen else tier_rate
        solvable_up = _rate(*_count([g for g in grades if g.tier == tier + 1]), cfg.prior, 0.5)
        demand = int(inside.sum()) / n
        gap = max(0.0, demand * (1 - cover) * solvable_up)
        for m in members:
            hardness[m] += gap * (1 - p_hat[m])
        radius = _radius(w.x, inside, centroid)
        cells.append(GapCell(
            cell_id=cell_id, centroid=encode_vector(centroid), size=int(inside.sum()),
            demand=round(demand, DIGITS), cover=round(cover, DIGITS),
            solvable_up=round(solvable_up, DIGITS), gap=round(gap, DIGITS),
            radius=round(radius, DIGITS),
            member_success={m: round(p, DIGITS) for m, p in seen.items()},
        ))
    cells.sort(key=lambda c: (len(c.cell_id), c.cell_id))  # cell-2 before cell-10
    event = GapIndexUpdated(
        cycle=cycle, tier=tier, cells=cells,
        gap_mass=round(sum(c.gap for c in cells), DIGITS),
        hardness={m: round(h, DIGITS) for m, h in hardness.items()},
        window=n, noise=round(float((w.labels == NOISE).mean()) if n else 0.0, DIGITS),
        ari=_ari(w),
    )
    refs = tuple(CellRef(c.cell_id, c.centroid) for c in cells)
    return event, replace(state, cells=MappingProxyType({**state.cells, tier: refs}),
                          issued=MappingProxyType({**state.issued, tier: issued}))


def _radius(points: np.ndarray, inside: np.ndarray, centroid: np.ndarray) -> float:
    """How far from the centroid a query still belongs to this cell: its farthest member,
    but short of the nearest query of the window outside it, so the ball holds this cell's
    queries only (the trainer and the canary pick target queries by it)."""
    d = np.linalg.norm(points - centroid, axis=1)
    farthest = float(d[inside].max())
    foreign = d[~inside]
    return min(farthest, float(foreign.min()) * 0.999) if foreign.size else farthest


def _forget(state: State, before: int) -> State:
    """Drop the queries and grades of cycles ≤ `before` (out of every later window)."""
    keep = lambda m: MappingProxyType({c: v for c, v in m.items() if c > before})  # noqa: E731
    return replace(state, queries=keep(state.queries), grades=keep(state.grades))


def _closed(cohort: Cohort, cfg: CartographyConfig, state: State, closure: Closure
            ) -> tuple[list[Emit], State]:
    """Map every cycle `closure` completes, in order."""
    emits: list[Emit] = []
    for cycle in range(state.closure.through + 1, closure.through + 1):
        w = window(state, cycle, cfg)
        for tier in range(cohort.top_tier):
            event, state = gap_map(cohort, cfg, state, cycle, tier, w)
            emits.append(Emit(event, subject=f"cycle-{cycle}", correlationid=f"cycle-{cycle}",
                              key=f"gaps|{cycle}|{tier}"))
        state = _forget(state, cycle + 1 - cfg.window_cycles)
    return emits, replace(state, closure=closure)


def _put(m: Mapping[int, Any], cycle: int, value: Any) -> MappingProxyType[int, Any]:
    return MappingProxyType({**m, cycle: value})


def step(cohort: Cohort, cfg: CartographyConfig, state: State, event: AnyEnvelope
         ) -> tuple[list[Emit], State]:
    data = event.data
    if isinstance(data, QueryReceived):
        if data.cycle <= state.closure.through:
            return [], state  # a stray of a closed cycle
        if data.embedding:  # a query without one cannot be placed in any cell
            task = data.task
            row = Row(data.embedding, f"{task.family}|{task.level}" if task else None)
            rows = {**state.queries.get(data.cycle, {}), data.query_id: row}
            state = replace(state, queries=_put(state.queries, data.cycle,
                                                MappingProxyType(rows)))
        return _closed(cohort, cfg, state, state.closure.with_query(data.cycle))
    if isinstance(data, ResponseGraded):
        if data.cycle <= state.closure.through:
            return [], state
        if not data.final:
            grade = Grade(data.query_id, data.model_id, data.tier, data.success)
            grades = tuple(sorted((*state.grades.get(data.cycle, ()), grade)))
            state = replace(state, grades=_put(state.grades, data.cycle, grades))
        return _closed(cohort, cfg, state, state.closure.with_grade(data.cycle))
    if isinstance(data, CycleGraded):
        return _closed(cohort, cfg, state, state.closure.with_closed(
            data.cycle, data.grades, data.queries))
    return [], state


def make_policy(cohort: Cohort, cfg: CartographyConfig = CartographyConfig()) -> Policy[State]:
    return Policy.stepped(State(), lambda s, e: step(cohort, cfg, s, e))
