"""Agents as separate OS processes, crashes, and the command line as a user runs it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.registry import proof_parts as proof
from projections.projector import projector_on
from runtime.bus import publish_event
from runtime.embedded import EmbeddedBroker
from runtime.stack import running
from tests.spine.helpers import ping

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
SLEEPWAKE = [sys.executable, "-m", "cli.main"]


def _faststream(app: str, bootstrap: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SLEEPWAKE_BOOTSTRAP": bootstrap}
    return subprocess.Popen(
        [sys.executable, "-m", "faststream", "run", app], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def test_sigkilled_agent_process_restarts_with_nothing_lost(
    kafka: EmbeddedBroker, db: Path
) -> None:
    rallies, limit = 6, 20
    ponger = _faststream("agents.ponger:app", kafka.bootstrap)
    try:
        async with running(proof("pinger"), projector_on(db), bootstrap=kafka.bootstrap) as stack:
            for r in range(rallies):
                await publish_event(stack.brokers[0], ping(f"r{r}", 0, limit))
            await stack.wait_for(lambda: stack.projected() >= rallies * limit // 2, timeout=60)
            ponger.send_signal(signal.SIGKILL)  # no graceful commit, no goodbye
            ponger.wait()
            stalled = stack.projected()
            ponger = _faststream("agents.ponger:app", kafka.bootstrap)
            await stack.wait_for(lambda: stack.projected() >= 2 * rallies * limit, timeout=90)
            await asyncio.sleep(1.0)
            assert stack.projector is not None
            con = stack.projector.store.conn
            assert stalled < 2 * rallies * limit
            assert con.execute("SELECT count(*) FROM events").fetchone() == (2 * rallies * limit,)
            assert con.execute(
                "SELECT count(*) FROM rallies WHERE pings = ? AND pongs = ?", [limit, limit]
            ).fetchone() == (rallies,)
    finally:
        ponger.kill()
        ponger.wait()


def _tansu_children() -> list[str]:
    pattern = "tansu[^ ]* broker --listener-url"
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return out.stdout.split()


def test_broker_command_prints_its_address_and_leaves_no_orphan() -> None:
    before = set(_tansu_children())
    proc = subprocess.Popen([*SLEEPWAKE, "broker"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("bootstrap: 127.0.0.1:"), line
    assert set(_tansu_children()) - before
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    time.sleep(0.2)
    assert set(_tansu_children()) <= before


def test_embedded_broker_dies_with_a_sigkilled_parent() -> None:
    before = set(_tansu_children())
    code = "from runtime.embedded import EmbeddedBroker as B; b=B().start(); print(b.port, flush=True); import time; time.sleep(60)"  # noqa: E501
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip()
    assert set(_tansu_children()) - before
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while set(_tansu_children()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(_tansu_children()) - before


def test_the_entry_point_explains_itself() -> None:
    out = subprocess.run([*SLEEPWAKE, "--help"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "120"})
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout and len(out.stdout) > 200


def _commands() -> list[list[str]]:
    """Every command and sub-command the CLI registers (new ones are checked unasked)."""
    import typer.main

    from cli.main import app

    def walk(group: Any, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(group, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    return walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "sleepwake")
def test_every_command_explains_itself(command: list[str]) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    out = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert out.exit_code == 0, out.output
    assert "Usage" in out.output and len(out.output) > 200
    # placeholders such as <out> survive the help's markdown (which drops bare <tags>)
    import typer.main

    cmd: Any = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]
    written = " ".join([cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)])
    for placeholder in set(re.findall(r"<[a-z_]+>", written)):
        assert placeholder in out.output, f"{placeholder} lost from {' '.join(command)} --help"


@pytest.mark.slow  # the proof flow through the CLI; its parts run in test_flow_contract, test_audit
def test_main_job_runs_end_to_end_and_audits_clean(tmp_path: Path) -> None:
    db = tmp_path / "run.duckdb"
    out = subprocess.run([*SLEEPWAKE, "proof", "--rallies", "10", "--db", str(db)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "10/10 rallies complete, 100 events projected" in out.stdout
    audit = subprocess.run([*SLEEPWAKE, "audit", "--db", str(db)], cwd=ROOT,
                           capture_output=True, text=True)
    assert audit.returncode == 0 and "audit: ok" in audit.stdout, audit.stdout


def test_replay_without_a_log_says_what_to_pass(tmp_path: Path) -> None:
    out = subprocess.run([*SLEEPWAKE, "replay", "--out", str(tmp_path / "x.duckdb")], cwd=ROOT,
                         capture_output=True, text=True, env={
                             k: v for k, v in os.environ.items() if k != "SLEEPWAKE_BOOTSTRAP"})
    assert out.returncode == 2 and "--bootstrap" in out.stderr


def test_schema_command_writes_one_schema_per_event_type(tmp_path: Path) -> None:
    out = subprocess.run([*SLEEPWAKE, "events", "schema", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "QueryReceived.v1.json").exists() and (tmp_path / "Ping.v2.json").exists()


def test_pure_agents_never_load_a_model_library() -> None:
    """Every pure policy builds without torch or transformers: an agent process that decides
    pays for its own imports only (start-up), and the models stay with the workers."""
    probe = ("import sys; from agents.config import SystemConfig; "
             "from agents.registry import policy_factories; "
             "[build() for build in policy_factories(SystemConfig()).values()]; "
             "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
