"""The whole loop over the real embedded broker: `sleepwake run` with the sleep half on a
tiny zoo, then checks over its log — one control phase per cycle, the 1/3 rule at every
cycle, never a cohort without a working member, a real adapter in the store, a clean audit —
and the same run with every agent as its own process and the trainer SIGKILLed mid-episode,
which must end with the same log and the same adapter bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from agents.config import (
    CartographySettings,
    MetaSettings,
    SleepSettings,
    SystemConfig,
    TrafficConfig,
)
from cli.audit import audit
from cli.serve import until_graded, wake_parts
from events.control import (
    ControlPhaseCompleted,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgress,
)
from modelcore.hashing import dir_sha256
from projections.projector import projector_on
from runtime.admin import ensure_topics
from runtime.embedded import EmbeddedBroker
from runtime.stack import running
from tests.spine.helpers import LogWatch
from tests.wake.test_processes import content

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
SLEEPWAKE = [sys.executable, "-m", "cli.main"]
CYCLES = 5


def sleepy(zoo: Path, store: Path) -> SystemConfig:
    """Small enough for a test: sleep may start after one cycle and lasts one."""
    return SystemConfig(
        zoo=zoo, meta=MetaSettings(prior_gain=0.5),
        traffic=TrafficConfig(seed=3, cycles=CYCLES, queries_per_cycle=16, shadow=0.25),
        sleep=SleepSettings(budget_per_cycle=20_000, slot_cycles=1, min_window=16,
                            min_gap_mass=0.0, min_cell_gap=0.0, cooldown_cycles=0, kd_batch=8,
                            checkpoint_every=10, adapter_store=store,
                            cartography=CartographySettings(min_cluster_size=5)))


@dataclass(frozen=True)
class Run:
    db: Path
    store: Path
    config: SystemConfig


@pytest.fixture(scope="module")
def sleep_run(tiny_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One `sleepwake run` of the whole system, through the CLI (the reference run)."""
    root = tmp_path_factory.mktemp("sleep")
    config = sleepy(tiny_zoo, root / "store")
    (root / "config.json").write_text(config.model_dump_json())
    db = root / "run.duckdb"
    done = subprocess.run([*SLEEPWAKE, "run", "--config", str(root / "config.json"),
                           "--db", str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| env-0 |" in done.stdout  # the run prints its sleep episodes
    return Run(db, root / "store", config)


def test_the_sleep_loop_keeps_its_budget_and_its_promises(sleep_run: Run) -> None:
    db, store = sleep_run.db, sleep_run.store
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
        (folder,) = store.glob(sha)
        assert dir_sha256(folder) == sha and steps >= 1
    audit = subprocess.run([*SLEEPWAKE, "audit", "--db", str(db)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-2000:]
    assert "canary_judge" in audit.stdout and "envelope_broker" in audit.stdout


class Watch(LogWatch):
    """Training heartbeats, outcomes and closed control phases, as they are written."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, "trainer", "envelope_broker")
        self.steps: dict[str, int] = {}
        self.outcomes: set[str] = set()
        self.phases: set[int] = set()

    def seen(self, data: Any) -> None:
        if isinstance(data, TrainingProgress):
            self.steps[data.envelope_id] = max(self.steps.get(data.envelope_id, 0), data.step)
        elif isinstance(data, TrainingCompleted | TrainingFailed):
            self.outcomes.add(data.envelope_id)
        elif isinstance(data, ControlPhaseCompleted):
            self.phases.add(data.cycle)


@pytest.mark.timeout(600)
async def test_a_trainer_killed_mid_episode_resumes_to_the_same_run(
    sleep_run: Run, kafka: EmbeddedBroker, tmp_path: Path
) -> None:
    """Every other agent and the projector run in this process; the trainer is its own
    process (`faststream run agents.trainer:app`), SIGKILLed once a checkpoint exists."""
    config = sleep_run.config  # the same adapter store: an adapter is stored by its hash
    file = tmp_path / "config.json"
    file.write_text(config.model_dump_json())
    db = tmp_path / "killed.duckdb"
    env = {**os.environ, "SLEEPWAKE_BOOTSTRAP": kafka.bootstrap, "SLEEPWAKE_CONFIG": str(file)}

    def trainer() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "faststream", "run",
                                 "agents.trainer:app"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ensure_topics(kafka.bootstrap, 3)
    watch = Watch(kafka.bootstrap)
    parts = [p for p in wake_parts(config) if p.name != "trainer"]
    proc = trainer()
    try:
        async with running(parts, projector_on(db), bootstrap=kafka.bootstrap) as stack:
            await watch.until(lambda: watch.steps.get("env-0", 0) >= 20)  # a checkpoint exists
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert "env-0" not in watch.outcomes  # it died mid-episode
            proc = trainer()
            await until_graded(stack, config.traffic, timeout=400, progress=False)
            await stack.settle()
    finally:
        proc.kill()
        proc.wait()
    (want, want_ids), (got, got_ids) = content(sleep_run.db), content(db)
    assert got_ids == want_ids
    assert got == want  # training_runs included: the same adapter sha256 per episode
    report = audit(db)
    assert report.ok, report.divergences[:5]
