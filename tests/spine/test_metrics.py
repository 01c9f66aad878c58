"""Prometheus metrics: the shell's counters move with what it handles, in memory and as a
process scraped over HTTP (runtime.metrics)."""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agents.pinger.policy import POLICY as PINGER
from agents.ponger.policy import POLICY as PONGER
from events.topology import topic_of
from runtime import metrics
from runtime.bus import publish_event
from runtime.embedded import EmbeddedBroker, free_port
from runtime.policy import AnyEnvelope
from runtime.stack import Part, in_memory, running, wait_until
from tests.spine.helpers import LogWatch, bad_inputs, ping

ROOT = Path(__file__).resolve().parents[2]
PROOF = [Part("pinger", PINGER), Part("ponger", PONGER)]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_counters_and_latency_move_with_the_events_handled() -> None:
    rallies, limit = 3, 4
    names = [("events_handled_total", {"agent": "ponger", "type": "Ping"}),
             ("events_handled_total", {"agent": "pinger", "type": "Pong"}),
             ("decision_seconds_count", {"agent": "ponger"}),
             ("decision_seconds_count", {"agent": "pinger"})]
    before = [value(f"sleepwake_{n}", **labels) for n, labels in names]
    async with in_memory(PROOF) as stack:
        for r in range(rallies):
            await publish_event(stack.brokers[0], ping(f"m{r}", 0, limit))
        await stack.wait_for(lambda: stack.agents["pinger"].handled >= rallies * limit)
        assert stack.agents["ponger"].handled == rallies * limit
    after = [value(f"sleepwake_{n}", **labels) for n, labels in names]
    assert [a - b for a, b in zip(after, before, strict=True)] == [rallies * limit] * 4
    assert value("sleepwake_decision_seconds_sum", agent="ponger") > 0


async def test_dead_letters_are_counted_by_reason() -> None:
    bad = bad_inputs()
    expected = collections.Counter([r for r, _ in bad] + ["handler_error"])
    before = {r: value("sleepwake_dead_letters_total", agent="ponger", reason=r)
              for r in expected}
    raising = Part("ponger", replace(PONGER, decide=_boom))
    async with in_memory([raising]) as stack:
        broker = stack.brokers[0]
        for _, raw in bad:
            await broker.publish(raw, topic=topic_of("pinger"), key=b"bad")
        await publish_event(broker, ping("boom", 0, 1))
        await stack.wait_for(lambda: stack.agents["ponger"].dead_letters >= len(bad) + 1)
    moved = {r: value("sleepwake_dead_letters_total", agent="ponger", reason=r) - n
             for r, n in before.items()}
    assert moved == expected


def _boom(state: Any, event: AnyEnvelope) -> Any:
    raise RuntimeError("no")


def test_a_worker_counts_its_model_calls_and_tokens(tiny_zoo: Path) -> None:
    from agents.cohort import Member
    from agents.worker.policy import make_policy
    from events.envelope import make_envelope
    from events.serving import QueryRouted
    from modelcore.backend import ModelBackend

    member = Member("l0-a", 0, 1, 0.5)
    policy = make_policy(member, ModelBackend.from_dir(tiny_zoo / "l0-a"))
    names = [("sleepwake_model_calls_total", {"model": "l0-a"}),
             ("sleepwake_model_tokens_total", {"model": "l0-a", "kind": "prompt"}),
             ("sleepwake_model_tokens_total", {"model": "l0-a", "kind": "generated"})]
    before = [value(n, **labels) for n, labels in names]
    routed = QueryRouted(query_id="c0-q1", cycle=0, model_id="l0-a", tier=0, text="gcd: 4 6")
    (emit,), _ = policy.react(None, make_envelope(routed, source="test", subject="c0-q1"))
    answer = emit.data
    moved = [value(n, **labels) - b for (n, labels), b in zip(names, before, strict=True)]
    assert moved == [1, answer.prompt_tokens, answer.answer_tokens]
    assert answer.prompt_tokens > 0


@pytest.fixture
def fresh_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """serve_metrics as if this process had served nothing yet."""
    monkeypatch.setattr(metrics, "_serving", None)
    monkeypatch.setenv(metrics.ADDR_ENV, "127.0.0.1")
    yield


@pytest.mark.parametrize("raw", ["abc", "-1", "9400x", "70000"])
def test_a_bad_port_says_what_to_set(fresh_server: None, monkeypatch: pytest.MonkeyPatch,
                                     raw: str) -> None:
    monkeypatch.setenv(metrics.PORT_ENV, raw)
    with pytest.raises(metrics.MetricsConfigError, match="SLEEPWAKE_METRICS_PORT must be"):
        metrics.serve_metrics()


def test_a_busy_port_fails_fast(fresh_server: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv(metrics.PORT_ENV, str(busy.getsockname()[1]))
        with pytest.raises(metrics.MetricsConfigError, match="free port"):
            metrics.serve_metrics()


def test_unset_serves_nothing_and_zero_picks_a_port_once(
    fresh_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.PORT_ENV, raising=False)
    assert metrics.serve_metrics() is None
    monkeypatch.setenv(metrics.PORT_ENV, "0")
    port = metrics.serve_metrics()
    assert port and metrics.serve_metrics() == port  # once per process
    assert "sleepwake_events_handled_total" in _get(port)


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text: str = resp.read().decode()
        return text


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(_get(port)) for s in family.samples}


class Proof(LogWatch):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, "pinger", "ponger")
        self.count: collections.Counter[str] = collections.Counter()

    def seen(self, data: Any) -> None:
        self.count[type(data).__name__] += 1


@pytest.mark.broker
async def test_an_agent_process_serves_what_it_handled(
    kafka: EmbeddedBroker, tmp_path: Path
) -> None:
    """The ponger as its own process, scraped over HTTP after each of two waves of rallies
    (the pinger, in this process, keeps them going): its counters equal the log's."""
    port, log = free_port(), tmp_path / "ponger.log"
    env = {**os.environ, "SLEEPWAKE_BOOTSTRAP": kafka.bootstrap,
           metrics.PORT_ENV: str(port), metrics.ADDR_ENV: "127.0.0.1"}
    with open(log, "wb") as out:
        ponger = subprocess.Popen([sys.executable, "-m", "faststream", "run", "agents.ponger:app"],
                                  cwd=ROOT, env=env, stdout=out, stderr=out)
    handled = ("sleepwake_events_handled_total", frozenset({("agent", "ponger"),
                                                             ("type", "Ping")}))
    decided = ("sleepwake_decision_seconds_count", frozenset({("agent", "ponger")}))
    try:
        async with running(PROOF[:1], bootstrap=kafka.bootstrap) as stack:
            scrapes, total, limit = [], 0, 10
            for wave in range(2):
                for r in range(2):
                    await publish_event(stack.brokers[0], ping(f"w{wave}r{r}", 0, limit))
                total += 2 * limit

                def done(want: int = total) -> bool:
                    assert ponger.poll() is None, log.read_text()[-3000:]
                    try:
                        return _scrape(port).get(handled) == want
                    except OSError:  # not serving yet
                        return False

                await wait_until(done, timeout=30, what=f"ponger's counter at {total}")
                scrapes.append(_scrape(port))
            await stack.brokers[0].publish(b"\xff junk", topic=topic_of("pinger"))
            letter = ("sleepwake_dead_letters_total",
                      frozenset({("agent", "ponger"), ("reason", "undecodable")}))
            await wait_until(lambda: _scrape(port).get(letter) == 1, timeout=15,
                             what="the ponger's dead letter counted")
            final = _scrape(port)
        watch = Proof(kafka.bootstrap)
        try:
            await watch.until(lambda: watch.count["Pong"] >= total, timeout=15)
            await asyncio.to_thread(watch.poll)  # and nothing more
        finally:
            watch.consumer.close()
    finally:
        ponger.terminate()
        ponger.wait(timeout=10)
    first, second = (s[handled] for s in scrapes)
    assert (first, second) == (2 * limit, 4 * limit)
    assert watch.count == {"Ping": total, "Pong": total}  # what the log says
    assert final[decided] == total
    lags = {dict(k[1])["partition"]: v for k, v in final.items()
            if k[0] == "sleepwake_consumer_lag" and ("topic", topic_of("pinger")) in k[1]}
    assert lags and all(v == 0 for v in lags.values()), lags
