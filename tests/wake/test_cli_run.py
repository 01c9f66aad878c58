"""`sleepwake run` itself, end to end over the real embedded broker: its printed table is what
the projection says, and `sleepwake audit` (configured from the log alone) finds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from agents.config import SystemConfig

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
SLEEPWAKE = [sys.executable, "-m", "cli.main"]


def test_run_prints_the_projected_metrics_and_audits_clean(
    tiny_config: SystemConfig, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(tiny_config.model_dump_json())
    db = tmp_path / "run.duckdb"
    done = subprocess.run([*SLEEPWAKE, "run", "--config", str(config), "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [line.strip("|").split("|") for line in done.stdout.splitlines()
               if line.startswith("| ") and line[2].isdigit()]
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT cycle, queries, accuracy, escalation_rate, "
                           "router_cost_per_query, cost_per_query, cost_with_shadow "
                           "FROM cycle_metrics ORDER BY cycle").fetchall()
    finally:
        con.close()
    assert len(rows) == tiny_config.traffic.cycles
    for cells, (cycle, n, acc, esc, router, cost, shadowed) in zip(printed, rows, strict=True):
        values = [c.strip() for c in cells]
        assert values[:2] == [str(cycle), str(n)]
        assert values[2:7] == [f"{acc:.3f}", f"{esc:.3f}", f"{router:.2e}", f"{cost:.3f}",
                               f"{shadowed:.3f}"]
        assert router > 0  # the router's embedding is counted
    report = tmp_path / "run-report"  # the run's report directory, beside its file
    assert (report / "cycles.png").stat().st_size > 10_000
    written = (report / "report.md").read_text()
    assert f"seed {tiny_config.traffic.seed}, {tiny_config.traffic.cycles} cycles" in written
    assert f"| {rows[-1][0]} | {rows[-1][2]:.3f} |" in written  # last cycle's accuracy
    audit = subprocess.run([*SLEEPWAKE, "audit", "--db", str(db)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]
    assert "audit: ok" in audit.stdout
