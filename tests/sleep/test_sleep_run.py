"""The whole loop over the real embedded broker: `sleepwake run` with the sleep half on a
tiny zoo, then checks over its log — one control phase per cycle, the 1/3 rule at every
cycle, never a cohort without a working member, a real adapter in the store, a clean audit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from agents.config import (
    CartographySettings,
    MetaSettings,
    SleepSettings,
    SystemConfig,
    TrafficConfig,
)
from modelcore.hashing import dir_sha256

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
SLEEPWAKE = [sys.executable, "-m", "cli.main"]
CYCLES = 5


def sleepy(zoo: Path, store: Path) -> SystemConfig:
    """Small enough for a test: sleep may start after one cycle and lasts one."""
    return SystemConfig(
        zoo=zoo, meta=MetaSettings(prior_gain=0.5),
        traffic=TrafficConfig(seed=3, cycles=CYCLES, queries_per_cycle=16, shadow=0.25),
        sleep=SleepSettings(budget_per_cycle=5_000, slot_cycles=1, min_window=16,
                            min_gap_mass=0.0, cooldown_cycles=0, kd_batch=8,
                            checkpoint_every=5, adapter_store=store,
                            cartography=CartographySettings(min_cluster_size=5)))


def test_the_sleep_loop_keeps_its_budget_and_its_promises(tiny_zoo: Path, tmp_path: Path
                                                          ) -> None:
    config = tmp_path / "config.json"
    config.write_text(sleepy(tiny_zoo, tmp_path / "store").model_dump_json())
    db = tmp_path / "run.duckdb"
    done = subprocess.run([*SLEEPWAKE, "run", "--config", str(config), "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    con = duckdb.connect(str(db), read_only=True)
    try:
        budget = con.execute("SELECT cycle, budget_total, train_used, infer_reserved "
                             "FROM control_budget ORDER BY cycle").fetchall()
        states = con.execute("SELECT cycle, list(state) FROM member_states "
                             "GROUP BY cycle ORDER BY cycle").fetchall()
        sleeps = con.execute("SELECT envelope_id, model_id, step_budget FROM envelopes "
                             "WHERE model_id IS NOT NULL").fetchall()
        runs = con.execute("SELECT envelope_id, outcome, adapter, steps FROM training_runs"
                           ).fetchall()
        maps = con.execute("SELECT count(*) FROM gap_maps").fetchone()
    finally:
        con.close()
    assert [row[0] for row in budget] == list(range(CYCLES))  # one control phase per cycle
    for _, total, train, infer in budget:
        assert train <= total / 3 + 1e-6 and infer >= total * 2 / 3 - 1e-6
    for _, members in states:
        assert members.count("SLEEPING") < len(members)  # a cohort always keeps a worker
    assert maps == (CYCLES,)
    assert sleeps, "no member was put to sleep"
    assert {r[0] for r in runs} == {s[0] for s in sleeps if s[0] in {r[0] for r in runs}}
    completed = [r for r in runs if r[1] == "completed"]
    assert completed, runs
    for _, _, sha, steps in completed:
        (folder,) = (tmp_path / "store").glob(sha)
        assert dir_sha256(folder) == sha and steps >= 1
    audit = subprocess.run([*SLEEPWAKE, "audit", "--db", str(db)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-2000:]
    assert "canary_judge" in audit.stdout and "envelope_broker" in audit.stdout
