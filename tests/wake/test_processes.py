"""Replay survives process layouts and restarts: `sleepwake run --processes`, with every
agent its own OS process and the selector, the meta-selector, the grader and a worker each
SIGKILLed at a seeded random point (the run restarts them), gives the same event ids and
projection digests as an uninterrupted in-process run of the same seed, and the audit finds
nothing. (The projector's own restart: tests/spine/test_log_kafka.py.)
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


def fleet_pid(parent: int, app: str, model: str | None = None) -> int:
    """The pid of the `faststream run <app>` process the run started (for a worker, the one
    serving `model`)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            if app not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            if model and f"SLEEPWAKE_MODEL={model}".encode() not in (proc / "environ").read_bytes():
                continue
            return int(proc.name)
        except (OSError, IndexError, ValueError):
            continue
    raise LookupError(f"no {app} process under {parent}")


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


@pytest.mark.timeout(600)
async def test_a_process_run_with_agents_sigkilled_gives_the_in_process_events(
    uninterrupted: Path, config: SystemConfig, kafka: EmbeddedBroker, tmp_path: Path
) -> None:
    file = tmp_path / "config.json"
    file.write_text(config.model_dump_json())
    members = sorted(p.name for p in Path(str(config.zoo)).iterdir())
    victims = [("selector", None), ("meta_selector", None), ("grader", None),
               ("worker", members[0])]
    total = config.traffic.cycles * config.traffic.queries_per_cycle
    points = sorted(random.Random(7).sample(range(1, 2 * total // 3), len(victims)))  # time
    # is left for the last restart to happen before the run ends
    ensure_topics(kafka.bootstrap, 3)
    progress = Progress(kafka.bootstrap)
    out = tmp_path / "b"
    with (tmp_path / "run.err").open("wb") as err:
        run = subprocess.Popen([sys.executable, "-m", "cli.main", "run", "--processes",
                                "--bootstrap", kafka.bootstrap, "--config", str(file), "--out",
                                str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for (agent, model), point in zip(victims, points, strict=True):
                await progress.until_counts(finals=point)
                os.kill(fleet_pid(run.pid, f"agents.{agent}:app", model), signal.SIGKILL)
            code = await asyncio.to_thread(run.wait, 400)
        finally:
            run.kill()
    assert code == 0, (tmp_path / "run.err").read_text()[-3000:]
    logs = {p.stem for p in (out / "logs").iterdir()}
    assert logs == {*WAKE_AGENTS, *(f"worker-{m}" for m in members)}
    said = (tmp_path / "run.err").read_text()
    for agent, model in victims:  # each killed once and restarted by the run
        assert f"agent {f'worker-{model}' if model else agent} exited with -9; restarting" in said
    (want, want_ids), (got, got_ids) = content(uninterrupted), content(out / "run.duckdb")
    assert got_ids == want_ids
    assert got == want
    report = audit(out / "run.duckdb")  # rebuilt from the configuration the run logged
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


@pytest.mark.timeout(600)
async def test_a_run_stopped_with_ctrl_c_resumes_from_its_log_to_the_same_events(
    uninterrupted: Path, config: SystemConfig, kafka: EmbeddedBroker, tmp_path: Path
) -> None:
    """Ctrl-C in the middle of a cycle, then `sleepwake run --resume` on a fresh broker
    (the log written back from the archive): the same ids and digests as uninterrupted."""
    file = tmp_path / "config.json"
    file.write_text(config.model_dump_json())
    ensure_topics(kafka.bootstrap, 3)
    progress = Progress(kafka.bootstrap)
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "SLEEPWAKE_BOOTSTRAP"}
    with (tmp_path / "run.err").open("wb") as err:
        run = subprocess.Popen([sys.executable, "-m", "cli.main", "run", "--bootstrap",
                                kafka.bootstrap, "--config", str(file), "--out", str(out)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            total = config.traffic.cycles * config.traffic.queries_per_cycle
            await progress.until_counts(finals=total // 2 + 1)
            run.send_signal(signal.SIGINT)
            code = await asyncio.to_thread(run.wait, 120)
        finally:
            run.kill()
    said = (tmp_path / "run.err").read_text()
    assert code == 130, said[-3000:]
    assert f"go on with: sleepwake run --resume {out}" in said, said[-3000:]
    partial = content(out / "run.duckdb")[1]
    assert 0 < len(partial) < len(content(uninterrupted)[1])

    resumed = subprocess.run([sys.executable, "-m", "cli.main", "run", "--resume", str(out)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (want, want_ids), (got, got_ids) = content(uninterrupted), content(out / "run.duckdb")
    assert got_ids == want_ids
    assert got == want
    report = audit(out / "run.duckdb")
    assert report.ok, report.divergences[:5]
    assert (out / "report.md").is_file()
