"""The main job: serve benchmark cycles through every wake agent and report per cycle."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.config import SystemConfig
from agents.registry import cohort_of, make_gateway, make_worker, pure_policies
from cli.stack import Part, Stack, running

METRICS = ("SELECT cycle, queries, graded, accuracy, escalation_rate, cost_per_query, "
           "cost_with_shadow, confidence_variance FROM cycle_metrics ORDER BY cycle")


@dataclass(frozen=True)
class ServeReport:
    cycles: list[tuple[Any, ...]]
    seconds: float
    events: int


def wake_parts(config: SystemConfig, traffic: bool = True) -> list[Part]:
    """Every serving agent: gateway (benchmark traffic, unless `traffic` is off), selector,
    one worker per member, meta-selector, grader."""
    cohort = cohort_of(config)
    pure = pure_policies(config, cohort)
    return [
        *([Part("gateway", make_gateway(config))] if traffic else []),
        Part("selector", pure["selector"]),
        *(Part("worker", make_worker(config, m, cohort), m.model_id) for m in cohort.members),
        Part("meta_selector", pure["meta_selector"]),
        Part("grader", pure["grader"]),
    ]


async def serve(bootstrap: str, db: Path, config: SystemConfig, timeout: float) -> ServeReport:
    started = time.monotonic()
    total = config.traffic.cycles * config.traffic.queries_per_cycle
    async with running(wake_parts(config), db, bootstrap=bootstrap) as stack:
        await until_graded(stack, total, timeout)
        await stack.settle()
        rows = await stack.query(METRICS)
        return ServeReport(rows, time.monotonic() - started, stack.projected())


async def until_graded(stack: Stack, total: int, timeout: float, progress: bool = True) -> None:
    """The count barrier: the gateway's own tally of final grades read from the log."""
    gateway = stack.agents["gateway"]
    with tqdm(total=total, desc="queries graded", unit="q", disable=not progress) as bar:
        async with asyncio.timeout(timeout):
            while (done := sum(gateway.state.finals.values())) < total:
                bar.update(done - bar.n)
                await asyncio.sleep(0.1)
            bar.update(total - bar.n)


def render(report: ServeReport) -> str:
    head = ("| cycle | queries | accuracy | escalation rate | cost/query | "
            "cost/query incl. shadow | conf. variance |\n|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for cycle, n, _, acc, esc, cost, cost_all, var in report.cycles:
        lines.append(f"| {cycle} | {n} | {acc:.3f} | {esc:.3f} | {cost:.3f} | {cost_all:.3f} | "
                     f"{(var or 0):.2e} |")
    return "\n".join(lines)


async def serve_http(bootstrap: str, db: Path, config: SystemConfig, port: int,
                     ready: asyncio.Event | None = None) -> None:
    """The wake agents behind the OpenAI-compatible endpoint, until cancelled."""
    import uvicorn

    from agents.gateway.http import HttpGateway

    async with running(wake_parts(config, traffic=False), db, bootstrap=bootstrap):
        front = HttpGateway(bootstrap, cycle_size=config.traffic.queries_per_cycle)
        async with front.broker:
            await front.broker.start()
            server = uvicorn.Server(uvicorn.Config(front.app, host="127.0.0.1", port=port,
                                                   lifespan="off", log_level="warning"))
            task = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.05)
            if ready is not None:
                ready.set()
            try:
                await task
            finally:
                server.should_exit = True
