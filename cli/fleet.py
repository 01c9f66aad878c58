"""`sleepwake run --processes`: every agent as its own OS process (`faststream run`), as in
production, with the projector and installed plug-ins in the parent. An agent that dies is
restarted (as compose's `restart: unless-stopped` does): it catches up from the log and
the run goes on with the same events.

The run must give the same events as the in-process one: the log, not the process layout,
decides. The parent waits on the log itself (the projector's count of closed cycles and,
with the sleep half, control phases), never on a clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from agents.config import SystemConfig
from agents.registry import cohort_of
from cli.serve import METRICS, ServeReport
from runtime.stack import Stack

SLEEP_AGENTS = ("cartographer", "envelope_broker", "trainer", "canary_judge")

log = logging.getLogger("sleepwake.fleet")


@dataclass
class Fleet:
    """The agents of a configuration as `faststream run` processes, logs in `logs`."""

    bootstrap: str
    config: Path
    logs: Path
    apps: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    max_restarts: int = 5

    @classmethod
    def of(cls, config: SystemConfig, bootstrap: str, folder: Path) -> Fleet:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(config.model_dump_json(indent=2))
        names = ("gateway", "selector", "meta_selector", "grader",
                 *(SLEEP_AGENTS if config.sleep.enabled else ()))
        apps: dict[str, tuple[str, dict[str, str]]] = {n: (f"agents.{n}:app", {}) for n in names}
        apps |= {f"worker-{m.model_id}": ("agents.worker:app", {"SLEEPWAKE_MODEL": m.model_id})
                 for m in cohort_of(config).members}
        return cls(bootstrap, folder / "config.json", folder / "logs", apps)

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for key in self.apps:
            self.spawn(key)

    def spawn(self, key: str) -> None:
        app, extra = self.apps[key]
        env = {**os.environ, "SLEEPWAKE_BOOTSTRAP": self.bootstrap,
               "SLEEPWAKE_CONFIG": str(self.config), **extra}
        with (self.logs / f"{key}.log").open("ab") as log:
            self.procs[key] = subprocess.Popen(
                [sys.executable, "-m", "faststream", "run", app], env=env, stdout=log,
                stderr=subprocess.STDOUT)

    def check(self) -> None:
        """Restart an agent that died; fail, naming it and its log, after `max_restarts`."""
        for key, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            self.restarts[key] = self.restarts.get(key, 0) + 1
            if self.restarts[key] > self.max_restarts:
                raise RuntimeError(f"agent {key} keeps exiting (last exit {proc.returncode}, "
                                   f"{self.max_restarts} restarts); its log: "
                                   f"{self.logs / (key + '.log')}")
            log.warning("agent %s exited with %s; restarting it (%d)", key, proc.returncode,
                        self.restarts[key])
            self.spawn(key)

    def stop(self, grace: float = 20.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def until_logged(read: Stack, config: SystemConfig, fleet: Fleet, timeout: float
                       ) -> None:
    """The count barrier, read from the projection: every cycle closed (and, with the sleep
    half, its control phase completed)."""
    kind = "ControlPhaseCompleted" if config.sleep.enabled else "CycleGraded"
    cycles, per = config.traffic.cycles, config.traffic.queries_per_cycle
    with tqdm(total=cycles * per, desc="queries graded", unit="q") as bar:
        async with asyncio.timeout(timeout):
            while True:
                fleet.check()
                (done,), = await read.query(
                    f"SELECT count(DISTINCT subject) FROM events WHERE type = '{kind}'")
                bar.update(min(done, cycles) * per - bar.n)
                if done >= cycles:
                    return
                await asyncio.sleep(0.5)


async def serve_processes(bootstrap: str, db: Path, config: SystemConfig, timeout: float,
                          folder: Path, plugins: bool = True) -> ServeReport:
    """`serve` with every agent as its own process; config and agent logs go in `folder`."""
    from agents.plugins import plugin_policies
    from projections.projector import projector_on
    from runtime.stack import Part, running

    started = time.monotonic()
    fleet = Fleet.of(config, bootstrap, folder)
    parts = [Part(n, p) for n, p in plugin_policies(config).items()] if plugins else []
    async with running(parts, projector_on(db), bootstrap=bootstrap) as stack:
        fleet.start()
        try:
            await until_logged(stack, config, fleet, timeout)
        finally:  # also on Ctrl-C: the projection then holds the whole log (--resume)
            await asyncio.to_thread(fleet.stop)
            await stack.stop_agents()
            await stack.drain()
        rows = await stack.query(METRICS)
    return ServeReport(rows, time.monotonic() - started, stack.projected())
