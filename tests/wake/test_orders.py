"""No decision depends on the interleaving Kafka allows: the whole wake pipeline, run directly
with every agent's real policy (tiny zoo), gives the same events in any delivery order."""

from __future__ import annotations

from agents.config import SystemConfig
from cli.serve import wake_parts
from events.serving import CycleGraded, QueryRouted
from runtime.direct import run_direct


def test_any_interleaving_gives_the_same_events(tiny_config: SystemConfig) -> None:
    parts = wake_parts(tiny_config)
    fifo = run_direct(parts)
    want = {str(e.id): e.data.model_dump_json() for e in fifo.log}
    for seed in (1, 2):
        shuffled = run_direct(parts, seed=seed)
        got = {str(e.id): e.data.model_dump_json() for e in shuffled.log}
        assert got == want, f"interleaving {seed} changed events"
    closings = [e.data for e in fifo.log if isinstance(e.data, CycleGraded)]
    assert [c.cycle for c in closings] == list(range(tiny_config.traffic.cycles))
    routed = {e.data.query_id for e in fifo.log if isinstance(e.data, QueryRouted)}
    assert len(routed) == tiny_config.traffic.cycles * tiny_config.traffic.queries_per_cycle
