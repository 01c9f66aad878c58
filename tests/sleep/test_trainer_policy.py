"""What an episode distils, decided from the log: the gap cells (the product), or, as the
comparison's baselines, every log query or the escalated ones; the gate is the same."""

from __future__ import annotations

import pytest

from agents.trainer.policy import TrainerConfig, held_out, make_policy, pending_jobs
from events.control import GapCell, SleepStarted
from events.serving import CycleOpened, Escalated
from events.vectors import encode_vector
from runtime.policy import run
from tests.wake.builders import env, near, query, unit

INSIDE, OUTSIDE = unit(1), unit(2)
CELL = GapCell(cell_id="cell-0", centroid=encode_vector(INSIDE), size=20, demand=0.5,
               cover=0.1, solvable_up=1.0, gap=0.45, radius=0.3)


def log() -> list:
    queries = [query(f"in{i}", near(INSIDE, i), text=f"gcd: {i} 6") for i in range(30)]
    queries += [query(f"out{i}", near(OUTSIDE, 100 + i), text=f"chain: {i}") for i in range(30)]
    escalated = [env(Escalated(query_id=f"out{i}", cycle=0, model_id="a", tier=0,
                               p_success=0.1, evi=0.3, theta=0.8, to_tier=1, to_model="top",
                               text=f"chain: {i}")) for i in range(0, 30, 3)]
    sleep = env(SleepStarted(envelope_id="env-0", cycle=0, due_cycle=2, model_id="a",
                             target_cells=[CELL], step_budget=10, hardness=0.5))
    return [env(CycleOpened(cycle=0, queries=60)), *queries, *escalated, sleep]


@pytest.mark.parametrize("examples", ["gap", "uniform", "escalated"])
def test_the_examples_follow_the_arm_and_the_gate_does_not(examples: str) -> None:
    cfg = TrainerConfig(examples=examples)
    state, _ = run(make_policy(cfg), log())
    (job,) = pending_jobs(cfg, state)
    trained = {t.text for t in job.targets}
    kept = {f"gcd: {i} 6" for i in range(30) if not held_out(f"in{i}", cfg.eval_share)} | {
        f"chain: {i}" for i in range(30) if not held_out(f"out{i}", cfg.eval_share)}
    if examples == "gap":
        assert trained == {t for t in kept if t.startswith("gcd")}
        assert set(job.replay) == kept - trained
    elif examples == "uniform":
        assert trained == kept and not job.replay
    else:
        assert trained == {f"chain: {i}" for i in range(0, 30, 3)} & kept
    gate = {q.query_id for q in job.eval_target} | {q.query_id for q in job.eval_outside}
    assert gate == {q for q in [*(f"in{i}" for i in range(30)), *(f"out{i}" for i in range(30))]
                    if held_out(q, cfg.eval_share)}
    assert all(q.query_id.startswith("in") for q in job.eval_target)
