"""Replay survives restarts: identical runs give identical logs, and SIGKILLing any agent
mid-run changes nothing.

Two in-process runs of the same seed must give the same event ids and the same projection
digests. A third run has every agent as its own OS process, and the selector, the
meta-selector, the grader, a worker and the projector are each SIGKILLed at a seeded random
point and restarted; its projection must equal the uninterrupted run's, and the audit must
find nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from agents.config import SystemConfig
from cli.audit import audit
from cli.serve import until_graded, wake_parts
from events.serving import CycleGraded, ResponseGraded
from projections.digest import digests
from projections.projector import projector_on
from runtime.admin import ensure_topics
from runtime.embedded import EmbeddedBroker
from runtime.stack import running
from tests.spine.helpers import LogWatch
from tests.wake.builders import WAKE_ONLY

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]

#: What differs between two runs of the same log by design: where and when an event was
#: written and read, which process wrote it, and — for a join — which of its inputs happened
#: to arrive last (its cause). The events themselves (id, type, subject, data) must not.
POSITIONAL = ("partition", "offset", "time", "source", "raw", "causationid")


WAKE_AGENTS = ("gateway", "selector", "meta_selector", "grader")


class Fleet:
    """The agents and the projector as `faststream run` processes, killable by name."""

    def __init__(self, bootstrap: str, config: Path, members: list[str], db: Path,
                 agents: tuple[str, ...] = WAKE_AGENTS) -> None:
        self.env = {**os.environ, "SLEEPWAKE_BOOTSTRAP": bootstrap,
                    "SLEEPWAKE_CONFIG": str(config), "SLEEPWAKE_DB": str(db)}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, tuple[str, dict[str, str]]] = {
            n: (f"agents.{n}:app", {}) for n in agents}
        self.specs |= {f"worker-{m}": ("agents.worker:app", {"SLEEPWAKE_MODEL": m})
                       for m in members}
        self.specs["projector"] = ("projections.app:app", {})

    def start(self, key: str) -> None:
        app, extra = self.specs[key]
        self.procs[key] = subprocess.Popen(
            [sys.executable, "-m", "faststream", "run", app], cwd=ROOT,
            env={**self.env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, key: str) -> None:
        self.procs[key].send_signal(signal.SIGKILL)
        self.procs[key].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


class Progress(LogWatch):
    """Final grades and closed cycles as the grader wrote them (read from its topic)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, "grader")
        self.finals: set[str] = set()
        self.closed: set[int] = set()

    def seen(self, data: Any) -> None:
        if isinstance(data, ResponseGraded) and data.final:
            self.finals.add(data.query_id)
        elif isinstance(data, CycleGraded):
            self.closed.add(data.cycle)

    async def until_counts(self, finals: int = 0, closed: int = 0, timeout: float = 240
                           ) -> None:
        await self.until(lambda: len(self.finals) >= finals and len(self.closed) >= closed,
                         timeout)


@pytest.fixture(scope="module")
def config(tiny_zoo: Path) -> SystemConfig:
    from agents.config import MetaSettings, TrafficConfig

    return SystemConfig(zoo=tiny_zoo, meta=MetaSettings(prior_gain=0.5), traffic=TrafficConfig(
        seed=3, cycles=3, queries_per_cycle=8, shadow=0.25), sleep=WAKE_ONLY)


async def in_process_run(config: SystemConfig, db: Path) -> None:
    with EmbeddedBroker() as kafka:
        async with running(wake_parts(config), projector_on(db),
                           bootstrap=kafka.bootstrap) as stack:
            await until_graded(stack, config.traffic, timeout=600, progress=False)
            await stack.settle()


def content(db: Path) -> tuple[dict[str, str], set[str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        ids = {r[0] for r in con.execute("SELECT id::VARCHAR FROM events").fetchall()}
        return digests(con, exclude_columns=POSITIONAL), ids
    finally:
        con.close()


@pytest.fixture(scope="module")
def uninterrupted(config: SystemConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    db = tmp_path_factory.mktemp("runs") / "a.duckdb"
    asyncio.run(in_process_run(config, db))
    yield db


async def test_two_identical_runs_give_identical_event_ids_and_digests(
    uninterrupted: Path, config: SystemConfig, tmp_path: Path
) -> None:
    await in_process_run(config, tmp_path / "b.duckdb")
    first, first_ids = content(uninterrupted)
    second, second_ids = content(tmp_path / "b.duckdb")
    assert len(first_ids) > 8 * 3 * 4
    assert first_ids == second_ids
    assert first == second


@pytest.mark.timeout(600)
async def test_sigkill_of_any_agent_at_random_points_changes_nothing(
    uninterrupted: Path, config: SystemConfig, kafka: EmbeddedBroker, tmp_path: Path
) -> None:
    file = tmp_path / "config.json"
    file.write_text(config.model_dump_json())
    members = [p.name for p in sorted(Path(str(config.zoo)).iterdir())]
    db = tmp_path / "killed.duckdb"
    fleet = Fleet(kafka.bootstrap, file, members, db)
    victims = ["selector", "meta_selector", "grader", f"worker-{members[0]}", "projector"]
    total = config.traffic.cycles * config.traffic.queries_per_cycle
    rng = random.Random(7)
    points = sorted(rng.sample(range(1, total - 1), len(victims)))
    ensure_topics(kafka.bootstrap, 3)
    progress = Progress(kafka.bootstrap)
    try:
        for key in fleet.specs:
            fleet.start(key)
        for victim, point in zip(victims, points, strict=True):
            await progress.until_counts(finals=point)
            fleet.kill(victim)
            fleet.start(victim)
        await progress.until_counts(closed=config.traffic.cycles)
    finally:
        fleet.stop()
    async with running([], projector_on(db), bootstrap=kafka.bootstrap) as stack:
        await stack.settle(quiet=2.0)  # the restarted projector resumes where its file ended
    (want, want_ids), (got, got_ids) = content(uninterrupted), content(db)
    assert got_ids == want_ids
    assert got == want
    report = audit(db)  # rebuilt from the configuration the run logged
    assert report.ok, report.divergences[:5]
    assert report.checked["selector"] > 0 and report.checked["meta_selector"] > 0
    assert report.checked["grader"] > 0


def decisions(db: Path) -> set[tuple[str, str]]:
    """Every decision of the run, by id: routes, answers, verdicts, grades, closings."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {(i, d) for i, d in con.execute(
            "SELECT id::VARCHAR, data::VARCHAR FROM events WHERE type IN ('QueryRouted', "
            "'ResponseGenerated', 'Accepted', 'Escalated', 'ResponseGraded', 'CycleGraded')"
        ).fetchall()}
    finally:
        con.close()


async def test_free_running_decides_exactly_as_lockstep(
    uninterrupted: Path, config: SystemConfig, tmp_path: Path
) -> None:
    """Free-running, every cycle's queries arrive at once, while the grades of earlier cycles
    (and their own) are still in flight; each decision still uses exactly the evidence of
    the cycles before its own, so it equals the lockstep decision."""
    free = config.model_copy(update={"traffic": config.traffic.model_copy(
        update={"mode": "free"})})
    await in_process_run(free, tmp_path / "free.duckdb")
    want, got = decisions(uninterrupted), decisions(tmp_path / "free.duckdb")
    assert len(want) > 8 * 3 * 3
    assert got == want
