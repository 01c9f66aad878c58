"""The proof flow end to end: rallies between pinger and ponger, projected into DuckDB."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from agents.registry import proof_parts as proof
from events.envelope import make_envelope
from events.proof import Ping
from projections.projector import projector_on
from runtime.bus import publish_event
from runtime.stack import running


@dataclass(frozen=True)
class ProofReport:
    rallies: int
    events: int
    complete: int
    seconds: float


async def prove(bootstrap: str, db: Path, rallies: int, limit: int, timeout: float) -> ProofReport:
    """Start both agents and the projector, serve `rallies` rallies, wait for the count."""
    started = time.monotonic()
    async with running(proof("pinger", "ponger"), projector_on(db), bootstrap=bootstrap) as stack:
        first = stack.brokers[0]
        before = stack.projected()
        for r in range(rallies):
            rally = f"rally-{r:05d}"
            await publish_event(first, make_envelope(
                Ping(rally=rally, n=0, limit=limit), source="cli/proof", subject=rally))
        expected = 2 * rallies * limit
        with tqdm(total=expected, desc="events projected", unit="ev") as bar:
            async with asyncio.timeout(timeout):
                while (done := stack.projected() - before) < expected:
                    bar.update(done - bar.n)
                    await asyncio.sleep(0.05)
            bar.update(expected - bar.n)
        assert stack.projector is not None
        (found,) = stack.projector.read(
            "SELECT count(*) FROM rallies WHERE pings = lim AND pongs = lim")
        return ProofReport(rallies, expected, int(found[0]),
                           time.monotonic() - started)
