"""The sleep report's cost arithmetic: training in serving units, amortised, break-even."""

from __future__ import annotations

from cli.report import RunTables, cost_lines, costs

EPISODE = ("env-0", "m", 2, 4, 5, "promoted", 100, 3.0e9, 40, 0.0, 0.6, 0.9, 0.9, "completed")


def _cycles(cost: float, n: int = 10) -> list[tuple]:
    return [(c, 0.9, 0.3, cost, None, None, None) for c in range(n)]


def test_training_is_amortised_and_paid_back_by_what_serving_saves() -> None:
    run = RunTables(_cycles(0.7), [EPISODE])
    base = RunTables(_cycles(0.9), [])
    c = costs(run, base, unit_flops=1e6, queries_per_cycle=10)
    assert c.train_units == 3000 and c.amortised == 30.0  # 3e9 / 1e6 units over 100 queries
    assert c.saved_per_query is not None and c.break_even is not None
    assert round(c.saved_per_query, 6) == 0.2  # cycles 6-9, after the promotion at 5
    assert round(c.break_even) == 15_000 and "15,000 queries" in cost_lines(c)


def test_no_saving_means_no_break_even_and_says_why() -> None:
    worse = costs(RunTables(_cycles(1.0), [EPISODE]), RunTables(_cycles(0.9), []), 1e6, 10)
    assert worse.break_even is None and "never" in cost_lines(worse)
    alone = costs(RunTables(_cycles(0.7), [EPISODE]), None, 1e6, 10)
    assert "no baseline" in cost_lines(alone)
    failed = costs(RunTables(_cycles(0.7), [(*EPISODE[:5], "failed", *EPISODE[6:])]), None,
                   1e6, 10)
    assert "no promotion" in cost_lines(failed)
