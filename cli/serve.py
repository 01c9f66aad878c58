"""The main job: serve benchmark cycles through every wake agent and report per cycle."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from tqdm import tqdm

from agents.config import SystemConfig, TrafficConfig
from agents.gateway.http import HttpGateway
from agents.gateway.http_policy import Limits
from agents.plugins import plugin_names
from agents.registry import cohort_of, make_gateway, make_worker, policy_factories, trainer_part
from projections.projector import projector_on
from runtime.policy import Deferred
from runtime.stack import Part, Stack, running

METRICS = ("SELECT cycle, queries, graded, accuracy, escalation_rate, router_cost_per_query, "
           "cost_per_query, cost_with_shadow, confidence_variance FROM cycle_metrics "
           "ORDER BY cycle")


@dataclass(frozen=True)
class ServeReport:
    cycles: list[tuple[Any, ...]]
    seconds: float
    events: int


def wake_parts(config: SystemConfig, traffic: bool = True, plugins: bool = True
               ) -> list[Part]:
    """Every agent: gateway (benchmark traffic, unless `traffic` is off), selector, one worker
    per member, meta-selector, grader and, with the sleep half, the gap cartographer, envelope
    broker, sleeper trainer and canary judge; and every installed plug-in agent (unless
    `plugins` is off: they then run as their own processes)."""
    cohort = cohort_of(config)
    pure = {name: Deferred(build) for name, build in policy_factories(config, cohort).items()}
    sleep = ("cartographer", "envelope_broker", "canary_judge") if config.sleep.enabled else ()
    return [  # policies are built in this order while the consumer groups join (`running`)
        *([Part("gateway", Deferred(partial(make_gateway, config)))] if traffic else []),
        Part("selector", pure["selector"]),
        *(Part("worker", Deferred(partial(make_worker, config, m, cohort)), m.model_id)
          for m in cohort.members),
        Part("meta_selector", pure["meta_selector"]),
        Part("grader", pure["grader"]),
        *(Part(name, pure[name]) for name in sleep),
        *([trainer_part(config)] if config.sleep.enabled else []),
        *(Part(name, pure[name]) for name in (plugin_names() if plugins else ())),
    ]


async def serve(bootstrap: str, db: Path, config: SystemConfig, timeout: float,
                plugins: bool = True) -> ServeReport:
    started = time.monotonic()
    async with running(wake_parts(config, plugins=plugins), projector_on(db),
                       bootstrap=bootstrap) as stack:
        try:
            await until_graded(stack, config.traffic, timeout)
        finally:  # also on Ctrl-C: the projection then holds the whole log (--resume)
            await stack.stop_agents()
            await stack.drain()
        rows = await stack.query(METRICS)
        return ServeReport(rows, time.monotonic() - started, stack.projected())


async def until_graded(stack: Stack, traffic: TrafficConfig, timeout: float,
                       progress: bool = True) -> None:
    """The count barrier: every cycle closed by the grader, as the gateway read it from the
    log (each query settled, shadow answers included)."""
    total, per_cycle = traffic.cycles * traffic.queries_per_cycle, traffic.queries_per_cycle
    gateway = stack.agents["gateway"]
    with tqdm(total=total, desc="queries graded", unit="q", disable=not progress) as bar:
        async with asyncio.timeout(timeout):
            closed = (lambda: gateway.state.controlled) if traffic_controlled(stack) \
                else (lambda: gateway.state.closed)
            while (done := min(total, len(closed()) * per_cycle)) < total:
                if done > bar.n:
                    bar.update(done - bar.n)
                    if progress and stack.projector is not None:
                        bar.set_postfix_str(await latest_cycle(stack), refresh=True)
                await asyncio.sleep(0.1)
            bar.update(total - bar.n)


LATEST = """
    SELECT m.cycle, m.accuracy, m.escalation_rate, m.cost_per_query,
           (SELECT string_agg(s.model_id || ' ' || lower(s.state), ', ' ORDER BY s.model_id)
              FROM member_states s WHERE s.cycle = (SELECT max(cycle) FROM member_states)
               AND s.state <> 'WORKING')
    FROM cycle_metrics m WHERE m.accuracy IS NOT NULL ORDER BY m.cycle DESC LIMIT 1"""


async def latest_cycle(stack: Stack) -> str:
    """The last projected cycle in a few words: what the live progress line shows."""
    rows = await stack.query(LATEST)
    if not rows:
        return ""
    cycle, acc, esc, cost, away = rows[0]
    return (f"cycle {cycle}: accuracy {acc:.2f}, escalated {esc:.2f}, cost {cost:.2f}"
            + (f"; {away}" if away else ""))


def traffic_controlled(stack: Stack) -> bool:
    """Does a cycle end with its control phase (the sleep half runs)?"""
    return "envelope_broker" in stack.agents


def render(report: ServeReport) -> str:
    head = ("| cycle | queries | accuracy | escalation rate | router cost/query | cost/query | "
            "cost/query incl. shadow | conf. variance |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for cycle, n, _, acc, esc, router, cost, cost_all, var in report.cycles:
        lines.append(f"| {cycle} | {n} | {acc:.3f} | {esc:.3f} | {router:.2e} | {cost:.3f} | "
                     f"{cost_all:.3f} | {(var or 0):.2e} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class HttpServing:
    """A running HTTP front: its port, the front (requests in flight) and the wake stack."""

    port: int
    front: HttpGateway
    stack: Stack


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers, which re-raise the signal once it has drained
    (so the process would die of SIGTERM, not exit 0): `serve_http` handles signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def http_front(bootstrap: str, db: Path, config: SystemConfig, port: int,
                     limits: Limits | None = None) -> AsyncIterator[HttpServing]:
    """The wake agents and the projector behind the OpenAI-compatible endpoint for the block.

    On exit the front stops accepting, lets requests in flight finish (each bounded by the
    timeout) and only then stops the agents they wait on."""
    limits = limits or Limits()
    # The front serves with the wake half: with the sleep half, a user's cycle would wait for
    # the previous cycle's control phase, for minutes when an episode is due (docs/design.md,
    # 'Time, order and replay'); sleep runs under the lockstep main job.
    config = config.model_copy(update={"sleep": config.sleep.model_copy(
        update={"enabled": False})})
    async with running(wake_parts(config, traffic=False), projector_on(db),
                       bootstrap=bootstrap) as stack:
        front = HttpGateway(bootstrap, config, limits=limits)
        await front.warm()
        async with front.broker:
            await front.broker.start()
            await front.resume()
            server = _Uvicorn(uvicorn.Config(
                front.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                timeout_graceful_shutdown=int(limits.timeout) + 5))
            task = asyncio.create_task(server.serve())
            try:
                while not server.started:
                    if task.done():
                        raise RuntimeError(f"the HTTP front could not listen on port {port}")
                    await asyncio.sleep(0.05)
                yield HttpServing(port, front, stack)
            finally:
                server.should_exit = True
                await task
                await front.close()


async def serve_http(bootstrap: str, db: Path, config: SystemConfig, port: int,
                     ready: asyncio.Event | None = None, limits: Limits | None = None,
                     signals: bool = False) -> None:
    """Serve until cancelled or, with `signals`, SIGINT/SIGTERM; then drain (`http_front`)."""
    async with http_front(bootstrap, db, config, port, limits):
        if ready is not None:
            ready.set()
        await _until_stopped(signals)


async def _until_stopped(signals: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM) if signals else ()
    for sig in handled:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
