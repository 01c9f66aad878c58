"""Every wake agent as its own OS process; SIGKILL mid-cycle loses and doubles nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents.config import SystemConfig
from cli.audit import audit
from projections.projector import projector_on
from runtime.embedded import EmbeddedBroker
from runtime.stack import Stack, running

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]


class Fleet:
    """The wake agents as `faststream run` processes, killable and restartable by name."""

    def __init__(self, bootstrap: str, config: Path, members: list[str]) -> None:
        self.env = {**os.environ, "SLEEPWAKE_BOOTSTRAP": bootstrap,
                    "SLEEPWAKE_CONFIG": str(config)}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs = {n: (n, {}) for n in ("gateway", "selector", "meta_selector", "grader")}
        self.specs |= {f"worker-{m}": ("worker", {"SLEEPWAKE_MODEL": m}) for m in members}

    def start(self, key: str) -> None:
        agent, extra = self.specs[key]
        self.procs[key] = subprocess.Popen(
            [sys.executable, "-m", "faststream", "run", f"agents.{agent}:app"], cwd=ROOT,
            env={**self.env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, key: str) -> None:
        self.procs[key].send_signal(signal.SIGKILL)
        self.procs[key].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


async def finals(stack: Stack) -> int:
    return int((await stack.query("SELECT count(*) FROM q_grades WHERE final"))[0][0])


async def wait_finals(stack: Stack, n: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while await finals(stack) < n:
            await asyncio.sleep(0.5)


async def test_agents_as_processes_survive_sigkill_mid_cycle(
    kafka: EmbeddedBroker, tmp_path: Path, tiny_config: SystemConfig
) -> None:
    cycles, n = 2, 8
    config = tiny_config.model_copy(update={"traffic": tiny_config.traffic.model_copy(
        update={"cycles": cycles, "queries_per_cycle": n})})
    file = tmp_path / "config.json"
    file.write_text(config.model_dump_json())
    members = [p.name for p in sorted(Path(str(config.zoo)).iterdir())]
    fleet = Fleet(kafka.bootstrap, file, members)
    db = tmp_path / "run.duckdb"
    try:
        async with running([], projector_on(db), bootstrap=kafka.bootstrap) as stack:
            for key in fleet.specs:
                fleet.start(key)
            await wait_finals(stack, 3, timeout=180)
            fleet.kill("selector")  # mid-cycle 0
            fleet.start("selector")
            await wait_finals(stack, n + 3, timeout=180)
            fleet.kill(f"worker-{members[0]}")  # mid-cycle 1
            fleet.start(f"worker-{members[0]}")
            await wait_finals(stack, cycles * n, timeout=240)
            await stack.settle(quiet=2.0)
            per_query = await stack.query(
                "SELECT query_id, count(*) FROM q_grades WHERE final GROUP BY 1")
            doubled = await stack.query(  # a shadow answer and a served one are two roles
                "SELECT data->>'query_id', data->>'model_id', data->>'shadow', count(*) "
                "FROM events WHERE type = 'ResponseGenerated' GROUP BY ALL HAVING count(*) > 1")
    finally:
        fleet.stop()
    assert len(per_query) == cycles * n and all(c == 1 for _, c in per_query)
    assert doubled == []
    report = audit(db, config=config)
    assert report.ok, report.divergences[:5]
    assert report.checked["selector"] > 0 and report.checked["meta_selector"] > 0
    assert json.loads(file.read_text())["traffic"]["cycles"] == cycles
