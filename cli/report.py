"""What a run's sleep half did, read from its projection: per cycle, per episode, and what
training cost against what it saved — beside a run without sleep on the same traffic.

Every number comes from the DuckDB file of a run (the projector's tables); nothing is
recomputed from models. Training FLOPs are turned into the serving unit (one always-top
query) with the zoo's cost normaliser, so both costs are on one scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

PER_CYCLE = """
    SELECT m.cycle, m.accuracy, m.escalation_rate, m.cost_per_query, g.gap_mass, g.ari,
           (SELECT string_agg(s.model_id || ' ' || lower(s.state), ', ' ORDER BY s.model_id)
              FROM member_states s WHERE s.cycle = m.cycle - 1 AND s.state <> 'WORKING')
    FROM cycle_metrics m LEFT JOIN gap_maps g ON g.cycle = m.cycle AND g.tier = 0
    ORDER BY m.cycle"""

EPISODES = """
    SELECT e.envelope_id, e.model_id, e.opened, e.due_cycle, e.closed, e.reason, t.steps,
           t.train_flops, t.examples, t.gate->>'target_before', t.gate->>'target_after',
           t.gate->>'outside_before', t.gate->>'outside_after', t.outcome
    FROM envelopes e LEFT JOIN training_runs t USING (envelope_id)
    WHERE e.model_id IS NOT NULL ORDER BY e.opened"""


@dataclass(frozen=True)
class RunTables:
    cycles: list[tuple[Any, ...]]
    episodes: list[tuple[Any, ...]]


def read_run(db: Path) -> RunTables:
    con = duckdb.connect(str(db), read_only=True)
    try:
        has_sleep = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'gap_maps'"
        ).fetchone()
        if not has_sleep or not has_sleep[0]:
            rows = con.execute("SELECT cycle, accuracy, escalation_rate, cost_per_query, NULL, "
                               "NULL, NULL FROM cycle_metrics ORDER BY cycle").fetchall()
            return RunTables(rows, [])
        return RunTables(con.execute(PER_CYCLE).fetchall(), con.execute(EPISODES).fetchall())
    finally:
        con.close()


def _f(value: Any, fmt: str = ".3f") -> str:
    return "-" if value is None else format(float(value), fmt)


def cycle_table(run: RunTables, baseline: RunTables | None) -> str:
    base = {row[0]: row for row in baseline.cycles} if baseline else {}
    head = ("| cycle | accuracy | no sleep | escalation rate | no sleep | cost/query | no sleep "
            "| gap mass | ARI | asleep or on canary |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    lines = [head]
    for cycle, acc, esc, cost, mass, ari, states in run.cycles:
        b = base.get(cycle, (None,) * 4)
        lines.append(f"| {cycle} | {_f(acc)} | {_f(b[1])} | {_f(esc)} | {_f(b[2])} | "
                     f"{_f(cost)} | {_f(b[3])} | {_f(mass)} | {_f(ari)} | {states or ''} |")
    return "\n".join(lines)


def episode_table(run: RunTables, unit_flops: float) -> str:
    head = ("| envelope | member | slept at | due | closed | verdict | steps | train cost "
            "(units) | examples | gate target | gate outside |\n"
            "|---|---|---:|---:|---:|---|---:|---:|---:|---|---|")
    lines = [head]
    for (env, member, opened, due, closed, reason, steps, flops, examples, tb, ta, ob, oa,
         outcome) in run.episodes:
        verdict = reason or ("training" if outcome is None else "canary")
        lines.append(
            f"| {env} | {member} | {opened} | {due} | {closed if closed is not None else '-'} "
            f"| {verdict} | {steps or '-'} | {_f(flops and flops / unit_flops, ',.0f')} | "
            f"{examples or '-'} | {_f(tb, '.2f')} → {_f(ta, '.2f')} | "
            f"{_f(ob, '.2f')} → {_f(oa, '.2f')} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Costs:
    """Training against serving, in units of one always-top query."""

    train_units: float
    queries: int
    saved_per_query: float | None  # serving cost saved per query after the first promotion
    why_not: str = ""  # why there is no saving figure

    @property
    def amortised(self) -> float:
        return self.train_units / self.queries if self.queries else 0.0

    @property
    def break_even(self) -> float | None:
        """Queries after which the run's training has paid for itself in serving cost."""
        if not self.saved_per_query or self.saved_per_query <= 0:
            return None
        return self.train_units / self.saved_per_query


def costs(run: RunTables, baseline: RunTables | None, unit_flops: float,
          queries_per_cycle: int) -> Costs:
    train = sum((row[7] or 0.0) for row in run.episodes) / unit_flops
    queries = len(run.cycles) * queries_per_cycle
    promoted = [row[4] for row in run.episodes if row[5] == "promoted"]
    saved, why = None, ""
    if not promoted:
        why = "no promotion, nothing saved"
    elif baseline is None:
        why = "no baseline given (--baseline: the same run with --no-sleep)"
    if baseline and promoted:
        first = min(promoted) + 1
        base = {row[0]: row[3] for row in baseline.cycles}
        after = [(base[c], cost) for c, _, _, cost, *_ in run.cycles if c >= first and c in base]
        if after:
            saved = sum(b - c for b, c in after) / len(after)
    return Costs(train, queries, saved, why)


def cost_lines(c: Costs) -> str:
    saved = c.why_not if c.saved_per_query is None else \
        f"{c.saved_per_query:+.3f} per query after the first promotion"
    even = "never at this saving" if c.break_even is None else f"{c.break_even:,.0f} queries"
    return (f"- training: {c.train_units:,.0f} units in all, {c.amortised:,.1f} per query "
            f"served ({c.queries} queries)\n- serving cost saved against no sleep: {saved}\n"
            f"- break-even volume: {even}")


def plot(run: RunTables, baseline: RunTables | None, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    cycles = [row[0] for row in run.cycles]
    panels = (("accuracy", 1), ("escalation rate", 2), ("serving cost / query", 3),
              ("gap mass", 4))
    for ax, (title, col) in zip(axes.flat, panels, strict=True):
        ax.plot(cycles, [row[col] for row in run.cycles], marker="o", ms=3, label="sleep-wake")
        if baseline and col < 4:
            ax.plot([r[0] for r in baseline.cycles], [r[col] for r in baseline.cycles],
                    marker="o", ms=3, alpha=0.6, label="no sleep")
        for _, _, opened, due, closed, reason, *_ in run.episodes:
            end = closed if closed is not None else cycles[-1]
            ax.axvspan(opened + 0.5, min(due, end) + 0.5, color="tab:purple", alpha=0.08)
            if closed is not None and due < closed:
                ax.axvspan(due + 0.5, closed + 0.5, color="tab:orange", alpha=0.10)
            if reason == "promoted":
                ax.axvline(closed + 0.5, color="tab:green", lw=1)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    for ax in axes[1]:
        ax.set_xlabel("cycle (purple: asleep, orange: canary, green line: promoted)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def sleep_summary(db: Path, cfg: Any, baseline: Path | None = None) -> str:
    """The run's sleep episodes and what training cost against what it saved."""
    from agents.cohort import cohort_from_zoo
    from agents.registry import unit_flops

    unit = unit_flops(cohort_from_zoo(cfg.zoo))
    run, base = read_run(db), read_run(baseline) if baseline else None
    return episode_table(run, unit) + "\n\n" + cost_lines(
        costs(run, base, unit, cfg.traffic.queries_per_cycle))


def write_report(db: Path, cfg: Any, out: Path, command: str,
                 baseline: Path | None = None) -> Path:
    """A run's report directory: report.md (what ran, per cycle, per episode, costs) and
    cycles.png beside it; the DuckDB file is named, never copied. Returns report.md."""
    out.mkdir(parents=True, exist_ok=True)
    run, base = read_run(db), read_run(baseline) if baseline else None
    plot(run, base, out / "cycles.png")
    t = cfg.traffic
    parts = [
        "# sleepwake run\n",
        f"- command: `{command}`",
        f"- seed {t.seed}, {t.cycles} cycles of {t.queries_per_cycle} queries, "
        f"sleep {'on' if cfg.sleep.enabled else 'off'}",
        f"- projection: `{db}` (audit: `sleepwake audit --db {db}`)",
        f"- baseline: `{baseline}`" if baseline else "",
        "\n## Per cycle\n", cycle_table(run, base),
        "\n![per cycle](cycles.png)\n",
    ]
    if cfg.sleep.enabled:
        parts += ["## Sleep episodes and costs\n", sleep_summary(db, cfg, baseline)]
    (out / "report.md").write_text("\n".join(p for p in parts if p) + "\n")
    return out / "report.md"
