"""Prometheus metrics of every agent and the projector (docs/design.md, 'Metrics').

One module registry per process (prometheus_client's default), labelled by agent, so the
agents of an in-process stack share it and one HTTP server. `serve_metrics` starts that
server on $SLEEPWAKE_METRICS_PORT (unset: none; 0: any free port, logged) once per process.
The shell's per-event calls go through a `Meter`, which caches its label children: an event
costs a dict lookup, a counter increment and a histogram observation.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("sleepwake.metrics")

PORT_ENV = "SLEEPWAKE_METRICS_PORT"
ADDR_ENV = "SLEEPWAKE_METRICS_ADDR"

#: From a pure fold (microseconds) to a model generation (seconds).
DECISION_BUCKETS = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0, 10.0, 30.0)

EVENTS_HANDLED = Counter("sleepwake_events_handled", "Events an agent decided on, by type.",
                         ["agent", "type"])
DECISION_SECONDS = Histogram("sleepwake_decision_seconds",
                             "Time of one decision (policy.react) per event.", ["agent"],
                             buckets=DECISION_BUCKETS)
DEAD_LETTERS = Counter("sleepwake_dead_letters",
                       "Records an agent (or the projector) dead-lettered, by reason.",
                       ["agent", "reason"])
CONSUMER_LAG = Gauge("sleepwake_consumer_lag",
                     "Records behind the partition's highwater after the last batch.",
                     ["agent", "topic", "partition"])
MODEL_CALLS = Counter("sleepwake_model_calls", "Generations a model worker ran.", ["model"])
MODEL_TOKENS = Counter("sleepwake_model_tokens", "Tokens of the worker's generations.",
                       ["model", "kind"])  # kind: prompt | generated
TRAINING_STEPS = Counter("sleepwake_training_steps", "Training steps reported by episodes.",
                         ["model"])
TRAINING_STEP = Gauge("sleepwake_training_step", "Step of the running episode.", ["model"])
TRAINING_LOSS = Gauge("sleepwake_training_loss", "Last reported training loss.", ["model"])
PROJECTED = Counter("sleepwake_projector_events_applied", "Events the projector applied, by "
                    "type ('unattributed': a partly re-delivered batch).", ["type"])
PROJECTED_LETTERS = Counter("sleepwake_projector_dead_letters",
                            "Dead letters the projector recorded, by reason.", ["reason"])


class MetricsConfigError(RuntimeError):
    """$SLEEPWAKE_METRICS_PORT cannot be served; the message says what to fix."""


_lock = threading.Lock()
_serving: int | None = None


def serve_metrics() -> int | None:
    """Serve /metrics on $SLEEPWAKE_METRICS_PORT, once per process; returns the port (None
    when the variable is unset). Raises MetricsConfigError on a bad or busy port."""
    global _serving
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > 65535:
        raise MetricsConfigError(f"{PORT_ENV} must be a port number (0 picks a free one) or "
                                 f"unset, got {raw!r}")
    with _lock:
        if _serving is not None:
            return _serving
        from prometheus_client import start_http_server

        addr = os.environ.get(ADDR_ENV, "0.0.0.0")
        try:
            server, _ = start_http_server(int(raw), addr=addr)
        except OSError as exc:
            raise MetricsConfigError(
                f"cannot serve metrics on {addr}:{raw} ({exc.strerror or exc}): set {PORT_ENV} "
                "to a free port, 0 for any free one, or unset it") from exc
        _serving = int(server.server_port)
    log.log(logging.WARNING if raw == "0" else logging.INFO,
            "metrics: http://%s:%d/metrics", addr, _serving)
    return _serving


class Meter:
    """One agent's metrics, label children cached (the shell calls these per event)."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.latency = DECISION_SECONDS.labels(agent)
        self.handled: dict[str, Any] = {}
        self.letters: dict[str, Any] = {}
        self.lags: dict[tuple[str, int], Any] = {}

    def decided(self, type: str, seconds: float) -> None:
        child = self.handled.get(type)
        if child is None:
            child = self.handled[type] = EVENTS_HANDLED.labels(self.agent, type)
        child.inc()
        self.latency.observe(seconds)

    def rejected(self, reason: str) -> None:
        child = self.letters.get(reason)
        if child is None:
            child = self.letters[reason] = DEAD_LETTERS.labels(self.agent, reason)
        child.inc()

    def lag(self, msg: Any) -> None:
        """Set the lag of each partition in a batch: the consumer's highwater minus the offset
        after the batch's last record (nothing on a broker without one: the test broker)."""
        highwater = getattr(getattr(msg, "consumer", None), "highwater", None)
        if highwater is None:
            return
        from aiokafka import TopicPartition

        raw = msg.raw_message
        nxt: dict[tuple[str, int], int] = {}
        for record in raw if isinstance(raw, list | tuple) else (raw,):
            key = (record.topic, record.partition)
            nxt[key] = max(nxt.get(key, 0), record.offset + 1)
        for key, offset in nxt.items():
            high = highwater(TopicPartition(*key))
            if high is None:
                continue
            child = self.lags.get(key)
            if child is None:
                child = self.lags[key] = CONSUMER_LAG.labels(self.agent, key[0], str(key[1]))
            child.set(max(high - offset, 0))


def observe_decision(agent: str, type: str, seconds: float) -> None:
    """An event decided on (uncached: for code that holds no Meter)."""
    EVENTS_HANDLED.labels(agent, type).inc()
    DECISION_SECONDS.labels(agent).observe(seconds)


def dead_lettered(agent: str, reason: str) -> None:
    DEAD_LETTERS.labels(agent, reason).inc()


def model_call(model: str, prompt_tokens: int, generated_tokens: int) -> None:
    MODEL_CALLS.labels(model).inc()
    MODEL_TOKENS.labels(model, "prompt").inc(prompt_tokens)
    MODEL_TOKENS.labels(model, "generated").inc(generated_tokens)


def training_progress(model: str, step: int, loss: float, new_steps: int) -> None:
    """A TrainingProgress the trainer publishes: `new_steps` since the episode's last one."""
    TRAINING_STEP.labels(model).set(step)
    TRAINING_LOSS.labels(model).set(loss)
    if new_steps > 0:
        TRAINING_STEPS.labels(model).inc(new_steps)


def projected(types: Iterable[str], applied: int) -> None:
    """A projected batch: by type when all of it applied, else its count as 'unattributed'."""
    _by_label(PROJECTED, types, applied)


def projected_letters(reasons: Iterable[str], added: int) -> None:
    _by_label(PROJECTED_LETTERS, reasons, added)


def _by_label(counter: Counter, labels: Iterable[str], done: int) -> None:
    """Count `done` items by label when all of them were done; a partly re-delivered batch
    does not say which were skipped, so its count goes under 'unattributed'."""
    tally = Tally(labels)
    if done == sum(tally.values()):
        for label, n in tally.items():
            counter.labels(label).inc(n)
    elif done:
        counter.labels("unattributed").inc(done)
