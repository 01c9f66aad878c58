"""Soak: does an agent's memory stay flat over hundreds of thousands of events?

    python benchmarks/bench_soak.py [--events 200000] [--seed 0] [--tracemalloc]

One ponger-shaped agent (the real shell: decode, dedupe by id, decide, publish, ack) answers
pings on the embedded broker. The pings are spread over many rallies, carry the correlation
id `cycle-<n>` advancing every `--per-cycle` events (so the dedupe memory, kept for the last
32 cycles, is exercised), and about 1 % are sent twice (so duplicates are dropped by it).

The policy is the ponger's decision with its memory removed: the real ponger remembers every
(rally, n) it answered, which grows with distinct pings by design (and is a policy's own
business), so it would hide whether the runtime itself holds on to anything.

Every `--every` events the process RSS and the number of ids the agent remembers are
sampled. Memory is flat when RSS grows by less than `--threshold` (10 %) over the second
half of the run (the exit status is 1 when it is not); `--tracemalloc` prints what grew
most between the half and the end.
Figures depend on the machine (2 CPU cores here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from agents.ponger.policy import decide as ponger_decide
from events.codec import encode
from events.envelope import make_envelope
from events.proof import Ping
from events.topology import AGENTS
from runtime.admin import ensure_topics
from runtime.embedded import EmbeddedBroker
from runtime.policy import Policy
from runtime.security import aiokafka_kwargs, security_from_env
from runtime.shell import Agent

#: The ponger's decision without its memory (see above): it answers every ping it is given.
FORGETFUL_PONGER: Policy[None] = Policy(
    initial=None,
    decide=lambda _state, event: ponger_decide(frozenset(), event),
    evolve=lambda state, _event: state,
)
RALLIES = 5_000
IN_FLIGHT = 20_000  # records produced but not yet consumed: keeps the broker's backlog short


def rss_mib() -> float:
    """Resident set size of this process in MiB (psutil, else /proc/self/status)."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no psutil and no /proc/self/status: cannot read the RSS") from None
    return float(psutil.Process().memory_info().rss) / 2**20


def pings(events: int, per_cycle: int, seed: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, encoded ping) records, `events` in all, about 1 % of them sent a second time."""
    rng = random.Random(seed)
    recent: list[tuple[bytes, bytes]] = []
    made, current = 0, 0
    while made < events:
        cycle = made // per_cycle
        if cycle != current:
            current = cycle
            recent.clear()
        if recent and rng.random() < 0.01:
            yield rng.choice(recent)  # a duplicate of this cycle: same id, same bytes
        else:
            rally = f"r{rng.randrange(RALLIES)}"
            ping = make_envelope(
                Ping(rally=rally, n=made, limit=events + 1), source="bench", subject=rally,
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                correlationid=f"cycle-{cycle}")
            record = (rally.encode(), encode(ping))
            recent.append(record)
            yield record
        made += 1


@dataclass
class Sample:
    events: int
    rss: float
    seen: int
    seconds: float


@dataclass
class Soak:
    agent: Agent[None]
    samples: list[Sample] = field(default_factory=list)
    snapshots: list[tracemalloc.Snapshot] = field(default_factory=list)

    @property
    def consumed(self) -> int:
        return self.agent.handled + self.agent.duplicates


async def produce(bootstrap: str, soak: Soak, args: argparse.Namespace) -> None:
    producer = AIOKafkaProducer(**aiokafka_kwargs(security_from_env()),
                                bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        topic = AGENTS["pinger"].topic
        pending = []
        for sent, (key, value) in enumerate(pings(args.events, args.per_cycle, args.seed)):
            while sent - soak.consumed > IN_FLIGHT:
                await asyncio.sleep(0.01)
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 2_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def watch(soak: Soak, args: argparse.Namespace, start: float) -> None:
    """Sample every `--every` consumed events until all are consumed."""
    half = args.events // 2
    with tqdm(total=args.events, unit="ev", desc="soak", smoothing=0.1) as bar:
        mark = 0
        while True:
            consumed = soak.consumed
            bar.update(consumed - bar.n)
            while mark <= consumed and mark <= args.events:
                soak.samples.append(Sample(consumed, rss_mib(), len(soak.agent.seen),
                                           time.perf_counter() - start))
                if args.tracemalloc and mark in (half - half % args.every, args.events):
                    soak.snapshots.append(tracemalloc.take_snapshot())
                mark += args.every
            if consumed >= args.events:
                return
            await asyncio.sleep(0.02)


async def soak_run(args: argparse.Namespace) -> tuple[Soak, float]:
    with EmbeddedBroker() as broker:
        ensure_topics(broker.bootstrap, args.partitions)
        agent: Agent[None] = Agent("ponger", FORGETFUL_PONGER, bootstrap=broker.bootstrap)
        soak = Soak(agent)
        await agent.prepare()
        async with agent.broker:
            await agent.broker.start()
            start = time.perf_counter()
            await asyncio.gather(produce(broker.bootstrap, soak, args),
                                 watch(soak, args, start))
            wall = time.perf_counter() - start
        return soak, wall


def verdict(samples: Sequence[Sample], threshold: float) -> tuple[bool, str]:
    """Flat when RSS at the end exceeds RSS at the half-way sample by less than `threshold`."""
    end = samples[-1]
    mid = min(samples, key=lambda s: abs(s.events - end.events / 2))
    growth = (end.rss - mid.rss) / mid.rss
    flat = growth < threshold
    return flat, (f"RSS {mid.rss:.1f} MiB at {mid.events:,} events -> {end.rss:.1f} MiB at "
                  f"{end.events:,}: {growth:+.1%} over the second half "
                  f"({'flat' if flat else 'NOT flat'}: threshold {threshold:.0%})")


def report_growth(snapshots: Sequence[tracemalloc.Snapshot], top: int = 12) -> None:
    here = tracemalloc.Filter(False, tracemalloc.__file__)
    before, after = (s.filter_traces([here]) for s in snapshots)
    print(f"\nlargest allocation growth, half-way -> end (top {top}):")
    for stat in after.compare_to(before, "lineno")[:top]:
        print(f"  {stat.size_diff / 2**10:+10.1f} KiB {stat.count_diff:+8d} blocks  "
              f"{stat.traceback}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog=(__doc__ or "").split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000,
                        help="records the agent consumes, duplicates included (default 200000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds rallies, event ids and which records are duplicated")
    parser.add_argument("--per-cycle", type=int, default=2_000,
                        help="events per correlation id cycle-<n> (default 2000)")
    parser.add_argument("--every", type=int, default=20_000,
                        help="sample RSS and remembered ids every this many events")
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic")
    parser.add_argument("--threshold", type=float, default=0.10,
                        help="largest RSS growth over the second half that counts as flat")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace allocations (much slower) and print what grew in the second "
                             "half")
    args = parser.parse_args()
    if args.events < 2 * args.every:
        parser.error("--events must cover at least two sampling intervals (--every)")
    if args.tracemalloc:
        tracemalloc.start()
    soak, wall = asyncio.run(soak_run(args))
    agent = soak.agent
    print(f"\nsoak: {args.events:,} events through one agent (pid {os.getpid()}, seed "
          f"{args.seed}, {args.per_cycle:,} per cycle, {args.partitions} partitions)")
    print("| events | RSS MiB | seen ids | s |")
    print("|---:|---:|---:|---:|")
    for s in soak.samples:
        print(f"| {s.events:,} | {s.rss:.1f} | {s.seen:,} | {s.seconds:.1f} |")
    print(f"\nhandled {agent.handled:,}, duplicates dropped {agent.duplicates:,}, dead letters "
          f"{agent.dead_letters}; wall {wall:.1f} s ({args.events / wall:,.0f} events/s)")
    flat, line = verdict(soak.samples, args.threshold)
    print(line)
    if len(soak.snapshots) == 2:
        report_growth(soak.snapshots)
    raise SystemExit(0 if flat else 1)


if __name__ == "__main__":
    main()
