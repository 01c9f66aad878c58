"""Gap cartographer policy: cells, G, hardness, stable ids, determinism, ARI, bounded memory."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pytest

from agents.cartographer.policy import CartographyConfig, State, make_policy
from agents.cohort import Cohort, Member
from events.control import GapCell, GapIndexUpdated
from events.envelope import Envelope, Payload
from events.serving import QueryReceived, TaskRef
from events.vectors import decode_vector, encode_vector
from runtime.policy import run
from tests.wake.builders import COHORT, closed, env, graded, near, query, unit

TIER0 = ("a", "b", "c")
X, Y, Z = unit(1), unit(2), unit(3)
FAIL_BELOW = {"a": False, "b": False, "c": False, "top": True}  # only the top solves it
ALL_PASS = {"a": True, "b": True, "c": True, "top": True}


@dataclass(frozen=True)
class Blob:
    name: str
    center: np.ndarray
    n: int
    success: Mapping[str, bool]  # every member answers every query (shadow-style)
    label: tuple[str, str] | None = None  # (family, level)


def labelled(qid: str, vec: np.ndarray, cycle: int, family: str, level: str
             ) -> Envelope[Payload]:
    task = TaskRef(family=family, level=level, seed=1, index=0)
    return env(QueryReceived(query_id=qid, cycle=cycle, text="q", embedding=encode_vector(vec),
                             task=task), qid, cycle)


def cycle_log(cycle: int, *blobs: Blob) -> list[Envelope[Payload]]:
    """Queries, then every member's grade of each, then the grader's closing of the cycle."""
    queries, grades = [], []
    for b, blob in enumerate(blobs):
        for i in range(blob.n):
            qid = f"c{cycle}-{blob.name}{i:02d}"
            vec = near(blob.center, 10_000 * cycle + 100 * b + i)
            if blob.label:
                queries.append(labelled(qid, vec, cycle, *blob.label))
            else:
                queries.append(query(qid, vec, cycle=cycle))
            for model, ok in blob.success.items():
                tier = 1 if model == "top" else 0
                grades.append(graded(qid, model, ok, cycle=cycle, tier=tier))
            served = next(iter(blob.success))
            grades.append(graded(qid, served, blob.success[served], cycle=cycle, final=True))
    n = sum(blob.n for blob in blobs)
    return [*queries, *grades, closed(cycle, grades=len(grades), queries=n)]


def maps(decided: list) -> list[GapIndexUpdated]:
    return [e.data for d in decided for e in d if isinstance(e.data, GapIndexUpdated)]


def nearest(cell: GapCell, *centers: np.ndarray) -> int:
    c = decode_vector(cell.centroid)
    return int(np.argmin([np.linalg.norm(c - v) for v in centers]))


def test_a_cell_only_the_tier_above_solves_has_the_gap() -> None:
    log = cycle_log(0, Blob("x", X, 10, FAIL_BELOW), Blob("y", Y, 10, ALL_PASS))
    _, decided = run(make_policy(COHORT), log)
    assert all(d == [] for d in decided[:-1])  # nothing before the closing event
    (emit,) = decided[-1]
    assert emit.key == "gaps|0|0" and emit.subject == emit.correlationid == "cycle-0"
    gaps = emit.data
    assert isinstance(gaps, GapIndexUpdated)
    assert (gaps.cycle, gaps.tier, gaps.window, gaps.noise, gaps.ari) == (0, 0, 20, 0.0, None)
    cells = {nearest(c, X, Y): c for c in gaps.cells}
    hard, easy = cells[0], cells[1]
    # each member: 10/20 overall → m = 11/22 = 0.5; prior 2 pulls 0/10 to 1/12, 10/10 to 11/12
    assert (hard.size, hard.demand, easy.size, easy.demand) == (10, 0.5, 10, 0.5)
    assert hard.member_success == dict.fromkeys(TIER0, round(1 / 12, 6))
    assert easy.member_success == dict.fromkeys(TIER0, round(11 / 12, 6))
    assert (hard.cover, hard.solvable_up) == (round(1 / 12, 6), round(11 / 12, 6))
    assert hard.gap == round(0.5 * (11 / 12) * (11 / 12), 6) == 0.420139
    assert easy.gap == round(0.5 * (1 / 12) * (11 / 12), 6) == 0.038194
    assert gaps.gap_mass == round(hard.gap + easy.gap, 6)
    h = 0.5 * (11 / 12) ** 3 + 0.5 * (1 / 12) ** 2 * (11 / 12)
    assert gaps.hardness == dict.fromkeys(TIER0, round(h, 6))
    assert 0 < hard.radius < 0.1 and {c.cell_id for c in gaps.cells} == {"cell-0", "cell-1"}


def test_the_map_waits_for_every_grade_of_the_cycle() -> None:
    log = cycle_log(0, Blob("x", X, 10, FAIL_BELOW), Blob("y", Y, 10, ALL_PASS))
    close, last_grade = log[-1], log[-2]
    early = [*log[:-2], close, last_grade]  # the closing count overtakes one grade
    _, decided = run(make_policy(COHORT), early)
    assert decided[-2] == []
    assert [m.cycle for m in maps(decided)] == [0] and len(decided[-1]) == 1


def test_cover_is_the_best_member_and_unseen_members_keep_their_overall_rate() -> None:
    only_b = {"b": True, "top": True}  # b masters x; a and c never answer it
    log = cycle_log(0, Blob("x", X, 10, only_b), Blob("y", Y, 10, ALL_PASS))
    _, decided = run(make_policy(COHORT), log)
    (gaps,) = maps(decided)
    x_cell = next(c for c in gaps.cells if nearest(c, X, Y) == 0)
    assert x_cell.member_success == {"b": round((10 + 2 * 21 / 22) / 12, 6)}
    assert x_cell.cover == x_cell.member_success["b"]
    assert x_cell.gap == round(0.5 * (1 - (10 + 2 * 21 / 22) / 12) * 11 / 12, 6) < 0.01
    # a has no answer in x: its hardness there uses its overall rate 11/12 (10/10 on y)
    y_cell = next(c for c in gaps.cells if c is not x_cell)
    p_y = (10 + 2 * 11 / 12) / 12
    assert y_cell.member_success["a"] == round(p_y, 6)
    h_a = (0.5 * (1 - (10 + 2 * 21 / 22) / 12) * 11 / 12) * (1 / 12) + y_cell.gap * (1 - p_y)
    assert gaps.hardness["a"] == pytest.approx(h_a, abs=2e-6)


def test_several_tiers_get_one_map_each_with_the_next_tier_as_solvable_up() -> None:
    three = Cohort((*COHORT.members, Member("huge", 2, 9000, 2.0)))
    log = cycle_log(0, Blob("x", X, 10, {**FAIL_BELOW, "huge": True}))
    _, decided = run(make_policy(three), log)
    emitted = maps(decided)
    assert [e.key for e in decided[-1]] == ["gaps|0|0", "gaps|0|1"]
    assert [m.tier for m in emitted] == [0, 1]
    assert set(emitted[1].hardness) == {"top"} and emitted[1].window == 10


def test_cell_ids_stay_while_clusters_stay_and_a_new_cluster_gets_a_new_id() -> None:
    cfg = CartographyConfig(window_cycles=2)
    log = [*cycle_log(0, Blob("x", X, 10, FAIL_BELOW), Blob("y", Y, 10, ALL_PASS)),
           *cycle_log(1, Blob("x", X, 10, FAIL_BELOW), Blob("y", Y, 10, ALL_PASS)),
           *cycle_log(2, Blob("x", X, 10, FAIL_BELOW), Blob("y", Y, 10, ALL_PASS),
                      Blob("z", Z, 12, ALL_PASS)),
           *cycle_log(3, Blob("y", Y, 10, ALL_PASS), Blob("z", Z, 12, ALL_PASS)),
           *cycle_log(4, Blob("y", Y, 10, ALL_PASS), Blob("z", Z, 12, ALL_PASS)),
           *cycle_log(5, Blob("x", X, 10, FAIL_BELOW), Blob("y", Y, 10, ALL_PASS))]
    _, decided = run(make_policy(COHORT, cfg), log)
    by_cycle = [{c.cell_id: nearest(c, X, Y, Z) for c in m.cells} for m in maps(decided)]
    first = by_cycle[0]
    assert sorted(first.values()) == [0, 1]
    assert by_cycle[1] == first
    assert by_cycle[2] == {**first, "cell-2": 2}
    assert by_cycle[4] == {k: v for k, v in by_cycle[2].items() if v != 0}  # x left the window
    back = {v: k for k, v in by_cycle[5].items()}
    assert back[0] == "cell-3"  # x came back after a gap: a new id, never a reused one
    assert back[1] == {v: k for k, v in first.items()}[1]  # y stayed throughout


def test_the_map_is_the_same_whatever_the_arrival_order() -> None:
    c0 = cycle_log(0, Blob("x", X, 9, FAIL_BELOW), Blob("y", Y, 9, ALL_PASS),
                   Blob("z", Z, 9, {**ALL_PASS, "a": False}))
    c1 = cycle_log(1, Blob("x", X, 9, FAIL_BELOW), Blob("z", Z, 9, FAIL_BELOW))
    base_state, base = run(make_policy(COHORT), [*c0, *c1])
    expected = [m.model_dump() for m in maps(base)]
    assert [m["cycle"] for m in expected] == [0, 1] and len(expected[0]["cells"]) == 3
    rng = random.Random(5)
    for _ in range(4):
        log = [*c0, *c1]
        rng.shuffle(log)  # any interleaving: the closure decides when a cycle is complete
        state, decided = run(make_policy(COHORT), log)
        assert [m.model_dump() for m in maps(decided)] == expected
        assert state == base_state


def test_ari_is_one_for_separated_labelled_clusters_and_none_without_labels() -> None:
    log = cycle_log(0, Blob("x", X, 10, FAIL_BELOW, ("chain", "hard")),
                    Blob("y", Y, 10, ALL_PASS, ("gcd", "easy")))
    _, decided = run(make_policy(COHORT), log)
    assert maps(decided)[0].ari == 1.0
    mixed = cycle_log(0, Blob("x", X, 10, FAIL_BELOW, ("chain", "hard")),
                      Blob("y", Y, 10, ALL_PASS, ("chain", "hard")))
    _, decided = run(make_policy(COHORT), mixed)
    assert maps(decided)[0].ari == 0.0  # two cells for one label


def test_too_few_queries_make_no_cell() -> None:
    _, decided = run(make_policy(COHORT), cycle_log(0, Blob("x", X, 7, FAIL_BELOW)))
    (gaps,) = maps(decided)
    assert (gaps.cells, gaps.gap_mass, gaps.window, gaps.noise) == ([], 0.0, 7, 1.0)
    assert gaps.hardness == dict.fromkeys(TIER0, 0.0)


def test_memory_is_bounded_by_the_window_and_strays_are_ignored() -> None:
    cfg = CartographyConfig(window_cycles=2)
    policy = make_policy(COHORT, cfg)
    state: State = policy.initial
    sizes = []
    for cycle in range(8):
        for event in cycle_log(cycle, Blob("x", X, 8, FAIL_BELOW), Blob("y", Y, 8, ALL_PASS)):
            _, state = policy.react(state, event)
        assert state.closure.through == cycle
        sizes.append((len(state.queries), sum(len(v) for v in state.queries.values()),
                      sum(len(v) for v in state.grades.values())))
    assert sizes == [(1, 16, 64)] * 8  # the last cycle only: the next window needs no more
    stray = query("late", X, cycle=3)
    emits, after = policy.react(state, stray)
    assert emits == [] and after == state


@pytest.mark.parametrize("prior", [0.0, 2.0])
def test_gap_is_never_negative_and_floats_are_rounded(prior: float) -> None:
    log = cycle_log(0, Blob("x", X, 11, {**FAIL_BELOW, "top": False}),
                    Blob("y", Y, 13, {**ALL_PASS, "b": False}))
    _, decided = run(make_policy(COHORT, CartographyConfig(prior=prior)), log)
    (gaps,) = maps(decided)
    for cell in gaps.cells:
        assert cell.gap >= 0
        for v in (cell.demand, cell.cover, cell.solvable_up, cell.gap, cell.radius):
            assert v == round(v, 6)
    if prior == 0.0:  # nobody above solves x: no gap there
        assert gaps.gap_mass == 0.0


def test_a_cell_radius_holds_its_own_queries_and_none_of_another_cell() -> None:
    """The trainer and the canary pick target queries by the radius: within it lie the cell's
    window queries and no query of any other cell (noise included)."""
    blobs = (Blob("x", X, 12, FAIL_BELOW), Blob("y", near(X, 99, eps=0.6), 12, ALL_PASS))
    log = cycle_log(0, *blobs)
    (gaps,) = maps(run(make_policy(COHORT), log)[1])
    vectors = {e.data.query_id: decode_vector(e.data.embedding) for e in log
               if isinstance(e.data, QueryReceived)}
    for cell in gaps.cells:
        c = decode_vector(cell.centroid)
        inside = {q for q, v in vectors.items() if np.linalg.norm(v - c) <= cell.radius}
        prefix = "c0-x" if nearest(cell, X, blobs[1].center) == 0 else "c0-y"
        assert inside and all(q.startswith(prefix) for q in inside)
