"""What a comparison found: per-run figures read from each run's projection, then means and
95 % confidence intervals over seeds, the routing field's summary figures, the paper's
claims beside ours, and the plots.

Every figure comes from a run's DuckDB file (`cycle_metrics`, `gap_maps`, `training_runs`);
nothing is recomputed from models. Definitions (also in the report):

- accuracy, escalation rate, serving cost per query (router included), confidence variance:
  means over the run's cycles (every cycle has the same number of queries);
- training cost per query: the run's training FLOPs in units of one always-top query, divided
  by the queries served; all-in = serving + training;
- initial / final: the means over cycles 1-5 (cycle 0 runs on priors) and over the last 5;
- settles by: the first cycle from which every cycle's serving cost per query stays within
  0.05 of the final mean (a run whose last cycle is still outside counts as settling one
  cycle after its end: censored, never left out); recovers in: the same, counted from a
  drift's first cycle;
- PGR (performance gap recovered): (accuracy - cheapest-only) / (always-top - cheapest-only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, stdev

import duckdb

WINDOW = 5
SETTLE_BAND = 0.05


@dataclass(frozen=True)
class RunFigures:
    arm: str
    seed: int
    cycles: int
    accuracy: float
    escalation: float
    serving: float
    training: float
    conf_variance: float
    gap_mass_initial: float | None
    gap_mass_final: float | None
    initial: dict[str, float]
    final: dict[str, float]
    settles_by: int
    per_cycle: dict[str, list[float | None]]
    recovers_in: int | None = None  # cycles from a drift until it settles again

    @property
    def all_in(self) -> float:
        return self.serving + self.training


PER_CYCLE = """
    SELECT m.cycle, m.accuracy, m.escalation_rate, m.cost_per_query,
           coalesce(m.confidence_variance, 0), g.gap_mass
    FROM cycle_metrics m LEFT JOIN gap_maps g ON g.cycle = m.cycle AND g.tier = 0
    ORDER BY m.cycle"""


#: The oracle router, from a run in which every member answered every query (shadow = 1):
#: per query, the cheapest member that answered right (else the top tier's answer). Its cost
#: counts that one answer, no router and no escalation: the bound no router can beat.
ORACLE = """
    WITH answers AS (
        SELECT (data->>'cycle')::INT AS cycle, data->>'query_id' AS q,
               (data->>'success')::BOOL AS ok, (data->>'cost_norm')::DOUBLE AS cost,
               (data->>'tier')::INT AS tier
        FROM events WHERE type = 'ResponseGraded'),
    per_query AS (
        SELECT cycle, q, bool_or(ok) AS solved, min(cost) FILTER (WHERE ok) AS cheapest_right,
               min(cost) FILTER (WHERE tier = (SELECT max(tier) FROM answers)) AS top_cost
        FROM answers GROUP BY cycle, q)
    SELECT cycle, avg(solved::INT), avg(coalesce(cheapest_right, top_cost))
    FROM per_query GROUP BY cycle ORDER BY cycle"""


def read_figures(db: Path, arm: str, seed: int, unit_flops: float,
                 drift_at: int | None = None) -> RunFigures:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(PER_CYCLE).fetchall()
        if arm == "oracle":  # the same cycles, answered by the cheapest member that was right
            best = {c: (acc, cost) for c, acc, cost in con.execute(ORACLE).fetchall()}
            rows = [(r[0], best[r[0]][0], 0.0, best[r[0]][1], *r[4:]) if r[0] in best else r
                    for r in rows]  # accuracy, no escalation, the oracle's cost
        flops = con.execute("SELECT coalesce(sum(train_flops), 0) FROM training_runs"
                            ).fetchone()
        queries = con.execute("SELECT coalesce(sum(queries), 0) FROM cycle_metrics").fetchone()
    finally:
        con.close()
    if not rows:
        raise ValueError(f"{db} holds no graded cycle: the run did not finish")
    col = {name: [r[i] for r in rows] for i, name in enumerate(
        ("cycle", "accuracy", "escalation", "serving", "conf_variance", "gap_mass"))}
    head = slice(1, 1 + WINDOW) if len(rows) > WINDOW else slice(0, len(rows))
    tail = slice(-WINDOW, None)
    measured = ("accuracy", "escalation", "serving", "conf_variance")
    served = float(queries[0]) if queries else 0.0
    final_cost = mean(col["serving"][tail])
    settle = _settles(col["serving"], final_cost, 0)
    after = _settles(col["serving"], final_cost, drift_at) if drift_at is not None else None
    return RunFigures(
        arm=arm, seed=seed, cycles=len(rows), accuracy=mean(col["accuracy"]),
        escalation=mean(col["escalation"]), serving=mean(col["serving"]),
        training=(float(flops[0]) / unit_flops / served) if flops and served else 0.0,
        conf_variance=mean(col["conf_variance"]), gap_mass_initial=_mean(col["gap_mass"][head]),
        gap_mass_final=_mean(col["gap_mass"][tail]),
        initial={k: mean(col[k][head]) for k in measured},
        final={k: mean(col[k][tail]) for k in measured}, settles_by=_cycle_at(col["cycle"], settle),
        per_cycle={k: list(v) for k, v in col.items() if k != "cycle"},
        recovers_in=None if after is None or drift_at is None
        else _cycle_at(col["cycle"], after) - drift_at)


def _settles(costs: Sequence[float], final: float, start: int) -> int:
    """The first cycle index from `start` on whose cost, and every later one's, is within the
    band of the final mean; `len(costs)` if even the last is not (censored at the run's end:
    a run that never settles counts as settling just after it, never as missing)."""
    return next((i for i in range(min(start, len(costs) - 1), len(costs))
                 if all(abs(c - final) <= SETTLE_BAND for c in costs[i:])), len(costs))


def _cycle_at(cycles: Sequence[int], index: int) -> int:
    """The cycle number at `index`; one past the last for a run that never settled."""
    return int(cycles[index]) if index < len(cycles) else int(cycles[-1]) + 1


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return mean(kept) if kept else None


@dataclass(frozen=True)
class Interval:
    mean: float
    half: float | None  # 95 % half-width; None with one seed
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f}" + ("" if self.half is None else f" ± {self.half:.3f}")


#: Two-sided 95 % Student t quantiles by degrees of freedom (n - 1).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228}


def interval(values: Sequence[float]) -> Interval:
    n = len(values)
    if n < 2:
        return Interval(values[0] if values else math.nan, None, n)
    t = _T95.get(n - 1, 1.96)
    return Interval(mean(values), t * stdev(values) / math.sqrt(n), n)
