"""`sleepwake ui` following a live `sleepwake run` over the real embedded broker, seen in
headless Chromium: the page renders its four charts while the run goes on, and once the run
is over its per-cycle table says exactly what the run's own projection says. A file the
run's projector holds is refused, with the way out (--bootstrap).

The run is the tiny zoo's, three cycles of twelve queries with the whole sleep half but no
training (`--no-training`: a sleep episode would start the trainer's own process and
double the test's time); the figures of sleep episodes are tested in test_dashboard.py.
The screenshot goes to the test's folder, and also to $SLEEPWAKE_UI_PNG where it is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kafka import KafkaProducer

from agents.config import (
    CartographySettings,
    MetaSettings,
    SleepSettings,
    SystemConfig,
    TrafficConfig,
)
from dashboard import browser
from runtime.bus import sync_client_kwargs
from runtime.embedded import EmbeddedBroker, free_port

pytestmark = pytest.mark.broker


@pytest.fixture(autouse=True)
def chromium() -> None:
    """The browser test fails, never skips, without a browser: setup.sh installs one."""
    assert browser.chromium() is not None, "Debian's chromium is missing: run ./setup.sh"

ROOT = Path(__file__).resolve().parents[2]
SLEEPWAKE = [sys.executable, "-m", "cli.main"]
CYCLES = 3


def config(zoo: Path, store: Path) -> SystemConfig:
    return SystemConfig(
        zoo=zoo, meta=MetaSettings(prior_gain=0.5),
        traffic=TrafficConfig(seed=3, cycles=CYCLES, queries_per_cycle=12, shadow=0.25),
        sleep=SleepSettings(min_window=12, adapter_store=store,
                            cartography=CartographySettings(min_cluster_size=4)))


class Table(HTMLParser):
    """The cells of each row of the table with id `cycle-table`, as rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = self._in_body = self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", "cycle-table") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False
        elif tag == "table":
            self._in_table = self._in_body = False

    def handle_data(self, text: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += text


def cycle_rows(dom: str) -> list[list[str]]:
    table = Table()
    table.feed(dom)
    return table.rows


def summary(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url + "api/summary", timeout=5) as reply:
            got: dict[str, Any] = json.loads(reply.read())
            return got
    except OSError:
        return {}


def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(0.3)


@pytest.mark.timeout(240)
def test_the_dashboard_follows_a_live_run(tiny_zoo: Path, kafka: EmbeddedBroker,
                                          tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_text(config(tiny_zoo, tmp_path / "store").model_dump_json())
    db, port = tmp_path / "run.duckdb", free_port()
    url = f"http://127.0.0.1:{port}/"
    ui_log, run_log = tmp_path / "ui.log", tmp_path / "run.log"
    with ui_log.open("w") as sink:
        ui = subprocess.Popen([*SLEEPWAKE, "ui", "--bootstrap", kafka.bootstrap, "--port",
                               str(port), "--interval", "1"], cwd=ROOT, stdout=sink,
                              stderr=subprocess.STDOUT)
    with run_log.open("w") as sink:
        run = subprocess.Popen([*SLEEPWAKE, "run", "--bootstrap", kafka.bootstrap, "--config",
                                str(file), "--db", str(db), "--no-training"], cwd=ROOT,
                               stdout=sink, stderr=subprocess.STDOUT)
    try:
        # The run's projector holds its file from its start: the dashboard refuses it.
        until(db.exists, 60, "the run's projection file")
        refused = subprocess.run([*SLEEPWAKE, "ui", "--db", str(db)], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
        assert run.poll() is None, "the run ended before the lock could be checked"
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "held by a writer" in refused.stderr and "--bootstrap" in refused.stderr

        # Live: a graded cycle shows up while the run is still serving.
        until(lambda: summary(url).get("cycles") or run.poll() is not None, 90,
              "the dashboard's first cycle")
        assert run.poll() is None, "the run ended before the dashboard showed a cycle"
        dom = browser.dom(url, budget_ms=6000)
        assert dom.count('class="js-plotly-plot"') == 4, dom[-2000:]
        assert cycle_rows(dom), "no per-cycle row rendered"

        assert run.wait(timeout=150) == 0, run_log.read_text()[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    # A record no consumer can read, on a dead-letter topic: the dashboard's own projector
    # records it as a dead letter (and writes nothing itself).
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, **sync_client_kwargs())
    producer.send("sw.gateway.v1.dlq", b"\xff not a dead letter")
    producer.flush()
    producer.close()

    con = duckdb.connect(str(db), read_only=True)  # the run is over: its file is free
    try:
        want = con.execute("SELECT cycle, queries, graded, accuracy, escalation_rate, "
                           "cost_per_query FROM cycle_metrics ORDER BY cycle").fetchall()
        gaps = dict(con.execute("SELECT cycle, gap_mass FROM gap_maps WHERE tier = 0"
                                ).fetchall())
    finally:
        con.close()
    assert len(want) == CYCLES
    try:
        def caught_up() -> bool:
            got = summary(url)
            return len(got.get("cycles", [])) == CYCLES and got.get("dead_letters") == 1

        until(lambda: ui.poll() is not None or caught_up(), 60, "the dashboard to catch up")
        assert ui.poll() is None, ui_log.read_text()[-3000:]
        shot = browser.screenshot(url, tmp_path / "ui.png", budget_ms=6000)
        dom = browser.dom(url, budget_ms=6000)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    assert dom.count('class="js-plotly-plot"') == 4
    assert "1 dead letter" in dom and "undecodable" in dom
    rendered = cycle_rows(dom)
    expected = [[str(c), str(n), str(g), f"{acc:.3f}", f"{esc:.3f}", f"{cost:.3f}",
                 "-" if gaps.get(c) is None else f"{gaps[c]:.3f}"]
                for c, n, g, acc, esc, cost in reversed(want)]
    assert [row[:7] for row in rendered] == expected
    assert re.search(r"\d+ events · cycles 0 to 2", dom)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if target := os.environ.get("SLEEPWAKE_UI_PNG"):
        shutil.copyfile(shot, target)
    assert "| 2 | 12 |" in run_log.read_text()  # the run printed its own table
