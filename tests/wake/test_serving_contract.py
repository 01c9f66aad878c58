"""The serving half end to end, on both backends: N queries in, N final grades out."""

from __future__ import annotations

from pathlib import Path

from agents.config import SystemConfig
from cli.serve import until_graded, wake_parts
from tests.conftest import StackFactory


async def test_every_query_gets_a_routed_graded_final_answer(
    backend: tuple[str, StackFactory], db: Path, tiny_config: SystemConfig
) -> None:
    _, stack_of = backend
    total = tiny_config.traffic.cycles * tiny_config.traffic.queries_per_cycle
    async with stack_of(wake_parts(tiny_config), db) as stack:
        await until_graded(stack, tiny_config.traffic, timeout=300, progress=False)
        await stack.settle()
        rows = await stack.query(
            "SELECT query_id, cycle, routed_to, final_model, final_tier, final_answer, quality, "
            "cost, escalated_from FROM queries ORDER BY query_id")
        metrics = await stack.query("SELECT cycle, queries, graded FROM cycle_metrics")
    assert len(rows) == total
    for qid, _, routed_to, final_model, final_tier, answer, quality, cost, escalated in rows:
        assert routed_to is not None and routed_to.startswith("l0-"), qid
        assert final_model is not None and answer is not None and quality is not None, qid
        assert cost > 0
        assert (final_tier == 1) == bool(escalated), qid  # escalation is the only way up
    assert metrics == [(c, 12, 12) for c in range(2)]
