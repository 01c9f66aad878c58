"""Agents by subscription: the example plug-in, pip-installed into this test's environment,
joins the system with no edit to the core — its topics are created and listed, its AsyncAPI
document is generated, it runs with `faststream run` over the real embedded broker next to
the built-in agents, its events are projected, and the audit re-decides it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import duckdb
import pytest

from agents.config import ConfigError, SleepSettings, SystemConfig, TrafficConfig
from events import plugins
from events.envelope import make_envelope
from events.serving import CycleGraded, ResponseGraded
from events.spec import AgentSpec
from events.topology import BUILTIN
from tests.spine.helpers import LogWatch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cost-watchdog"
SLEEPWAKE = [sys.executable, "-m", "cli.main"]
CYCLES = 3


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install` of the example package (from a copy: the checkout stays untouched)."""
    root = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(EXAMPLE, root / "src")
    target = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def env_with(site: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), **extra}


def sleepwake(site: Path, *args: str, **extra: str) -> str:
    done = subprocess.run([*SLEEPWAKE, *args], cwd=ROOT, env=env_with(site, **extra),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class Measured(LogWatch):
    """The cycles the watchdog measured, read raw: this test process has not installed the
    plug-in, so its catalogue cannot decode the plug-in's events (the subprocesses can)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, "cost_watchdog")
        self.cycles: set[int] = set()

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=200).values():
            for rec in records:
                doc = json.loads(rec.value)
                if doc["type"] == "CycleCostMeasured":
                    self.cycles.add(doc["data"]["cycle"])


@pytest.mark.broker
def test_the_example_plugin_runs_is_projected_and_audited(
    installed: Path, tiny_zoo: Path, kafka: Any, tmp_path: Path
) -> None:
    topics = sleepwake(installed, "events", "topics")
    assert "sw.cost_watchdog.v1" in topics and "emits CycleCostMeasured, CostDrifted" in topics
    sleepwake(installed, "events", "asyncapi", "cost_watchdog", "--out", str(tmp_path / "a.json"))
    assert "CostDrifted" in (tmp_path / "a.json").read_text()

    config = SystemConfig(zoo=tiny_zoo, traffic=TrafficConfig(seed=5, cycles=CYCLES,
                                                              queries_per_cycle=12),
                          sleep=SleepSettings(enabled=False),
                          plugins={"cost_watchdog": {"warmup": 1, "tolerance": 0.0}})
    (tmp_path / "config.json").write_text(config.model_dump_json())
    env = env_with(installed, SLEEPWAKE_BOOTSTRAP=kafka.bootstrap,
                   SLEEPWAKE_CONFIG=str(tmp_path / "config.json"))
    watchdog = subprocess.Popen([sys.executable, "-m", "faststream", "run", "cost_watchdog:app"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    try:  # the built-in agents in one process, the plug-in as its own, as in production
        sleepwake(installed, "run", "--bootstrap", kafka.bootstrap, "--no-plugins",
                  "--config", str(tmp_path / "config.json"), "--db", str(tmp_path / "run.duckdb"))
        watch = Measured(kafka.bootstrap)
        asyncio.run(watch.until(lambda: watch.cycles == set(range(CYCLES)), timeout=120))
    finally:
        watchdog.terminate()
        out = watchdog.communicate(timeout=30)[0].decode()
        print(out[-5000:])  # shown when the test fails
    assert watchdog.returncode == 0, out[-3000:]

    replayed = tmp_path / "replay.duckdb"  # the whole log, the plug-in's events included
    sleepwake(installed, "replay", "--source", "kafka", "--bootstrap", kafka.bootstrap,
              "--out", str(replayed))
    con = duckdb.connect(str(replayed), read_only=True)
    try:
        measured = dict(con.execute(
            "SELECT (data->>'cycle')::INT, (data->>'cost_per_query')::DOUBLE FROM events "
            "WHERE topic = 'sw.cost_watchdog.v1' AND type = 'CycleCostMeasured'").fetchall())
        expected = dict(con.execute(
            "SELECT g.cycle, sum((data->>'cost_norm')::DOUBLE) / any_value(q.n) FROM events g "
            "JOIN (SELECT (data->>'cycle')::INT AS c, (data->>'queries')::INT AS n FROM events "
            "      WHERE type = 'CycleGraded') q ON q.c = g.cycle "
            "WHERE g.type = 'ResponseGraded' AND (data->>'final')::BOOL "
            "AND NOT (data->>'shadow')::BOOL GROUP BY g.cycle").fetchall())
        alerts = con.execute("SELECT count(*) FROM events WHERE type = 'CostDrifted'"
                             ).fetchone()
    finally:
        con.close()
    assert measured.keys() == expected.keys() == set(range(CYCLES))
    for cycle, cost in measured.items():
        assert cost == pytest.approx(expected[cycle], rel=1e-9)
    differs = sum(measured[c] != measured[0] for c in range(1, CYCLES))
    assert alerts == (differs,)  # tolerance 0: every cycle off the baseline alerts

    audit = sleepwake(installed, "audit", "--db", str(replayed))
    assert "audit: ok" in audit
    assert "cost_watchdog" in audit


def test_bad_plugin_settings_fail_fast_naming_the_field(installed: Path, tmp_path: Path
                                                        ) -> None:
    (tmp_path / "c.json").write_text(SystemConfig(
        plugins={"cost_watchdog": {"warmup": 0}}).model_dump_json())
    done = subprocess.run([*SLEEPWAKE, "run", "--config", str(tmp_path / "c.json"), "--db",
                           str(tmp_path / "x.duckdb")], cwd=ROOT, env=env_with(installed),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "plugins.cost_watchdog.warmup" in done.stderr


def test_settings_for_a_plugin_that_is_not_installed_are_refused() -> None:
    from agents.plugins import plugin_policies

    with pytest.raises(ConfigError, match="no installed plug-in agent named ghost"):
        plugin_policies(SystemConfig(plugins={"ghost": {}}))


# --- the watchdog's policy: the same events in any delivery order give the same decisions ---

def graded_cycle(cycle: int, costs: list[float]) -> list[Any]:
    grades = [make_envelope(ResponseGraded(
        query_id=f"c{cycle}-q{i}", cycle=cycle, model_id="l0-a", tier=0, quality=1.0,
        success=True, method="reference", final=True, shadow=False, confidence=0.9,
        cost_norm=cost), source="grader/t", subject=f"c{cycle}-q{i}")
        for i, cost in enumerate(costs)]
    closing = make_envelope(CycleGraded(cycle=cycle, queries=len(costs), grades=len(costs)),
                            source="grader/t", subject=f"cycle-{cycle}")
    return [*grades, closing]


@pytest.fixture
def watchdog_policy(installed: Path) -> Iterator[Any]:
    sys.path.insert(0, str(installed))
    try:
        from cost_watchdog.policy import make_policy

        yield make_policy(SystemConfig(plugins={"cost_watchdog": {"warmup": 2,
                                                                  "tolerance": 0.2}}))
    finally:
        sys.path.remove(str(installed))


def decisions(policy: Any, events: list[Any]) -> dict[str, Any]:
    state, out = policy.initial, {}
    for event in events:
        emits, state = policy.react(state, event)
        out.update({e.key: e.data for e in emits})
    return out


def test_watchdog_alerts_on_drift_whatever_the_delivery_order(watchdog_policy: Any) -> None:
    log = [*graded_cycle(0, [0.5, 0.1, 0.3]), *graded_cycle(1, [0.3, 0.3, 0.3]),
           *graded_cycle(2, [0.3, 0.31, 0.29]), *graded_cycle(3, [0.9, 0.8, 0.7])]
    in_order = decisions(watchdog_policy, log)
    assert set(in_order) == {"measured|0", "measured|1", "measured|2", "measured|3",
                             "drifted|3"}
    assert in_order["drifted|3"].drift == pytest.approx((0.8 - 0.3) / 0.3)
    shuffled = log[:]
    for seed in range(5):  # cycles completing out of order, grades after their closing
        random.Random(seed).shuffle(shuffled)
        assert decisions(watchdog_policy, shuffled) == in_order


# --- what a plug-in may not do: every refusal names the plug-in and the fix ---

class Fake(EntryPoint):
    dist = None


GOOD = AgentSpec("watch2", (type("Watch2Seen", (CycleGraded,), {"TYPE": "Watch2Seen"}),),
                 ("grader",))
TAKEN_NAME = AgentSpec("selector", GOOD.produces, ("grader",))
TAKEN_TYPE = AgentSpec("watch3", (CycleGraded,), ("grader",))
UNKNOWN_INPUT = AgentSpec("watch4", GOOD.produces, ("nobody",))
NOT_A_SPEC = {"name": "watch5"}


@pytest.mark.parametrize(("name", "attr", "problem"), [
    ("watch2", "GOOD", None),
    ("selector", "TAKEN_NAME", "the name is taken"),
    ("watch3", "TAKEN_TYPE", "event type 'CycleGraded' is taken"),
    ("watch4", "UNKNOWN_INPUT", "reads unknown agent"),
    ("watch5", "NOT_A_SPEC", "not an events.spec.AgentSpec"),
    ("other", "GOOD", "give both the same name"),
    ("watch6", "MISSING", "loading tests.ops.test_plugins:MISSING failed"),
])
def test_plugin_specs_are_checked(monkeypatch: pytest.MonkeyPatch, name: str, attr: str,
                                  problem: str | None) -> None:
    entry = Fake(name, f"tests.ops.test_plugins:{attr}", plugins.GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [entry])
    if problem is None:
        assert plugins.plugin_specs(BUILTIN) == (GOOD,)
        return
    with pytest.raises(plugins.PluginError, match=problem):
        plugins.plugin_specs(BUILTIN)
