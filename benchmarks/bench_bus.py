"""What the event bus costs, as ratios measured in one run on one machine.

1. Serving: the wake agents over the embedded broker (the in-process stack, as `sleepwake
   run`) against the same policies called directly in one process (runtime.direct), on the
   same configuration; queries per second, start-up excluded.
2. An event hop through the agent shell (decode, dedupe, decide, publish, commit) against raw
   aiokafka produce + consume of the same records.
3. Replay from Kafka into a fresh DuckDB file against a raw kafka-python consume of the same
   log.
4. Start-up: seconds from launching `sleepwake run` to its first routed query.

    python benchmarks/bench_bus.py --cycles 2 --queries 64 --events 20000 --seed 0
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition

from agents.config import SleepSettings, SystemConfig, TrafficConfig
from agents.ponger.policy import POLICY as PONGER
from cli.serve import until_graded, wake_parts
from events.codec import encode
from events.envelope import make_envelope
from events.proof import Ping
from events.topology import topic_of
from projections.projector import projector_on
from projections.replay import replay_from_kafka
from runtime.admin import ensure_topics
from runtime.direct import run_direct
from runtime.embedded import EmbeddedBroker
from runtime.policy import Policy
from runtime.shell import Agent
from runtime.stack import running

ROOT = Path(__file__).resolve().parents[1]


#: The ponger's decision without its memory (the proof ponger remembers every ping it answered
#: in a frozenset copied per event, which would measure that set, not the shell).
ECHO: Policy[None] = Policy(initial=None, decide=lambda s, e: PONGER.decide(frozenset(), e),
                            evolve=lambda s, e: None)


def ping(rally: str) -> bytes:
    return encode(make_envelope(Ping(rally=rally, n=0, limit=1), source="bench", subject=rally))


def serving(config: SystemConfig) -> tuple[float, float]:
    """Queries per second: (direct, through the bus)."""
    parts = wake_parts(config)
    for part in parts:  # models loaded before the clock, as the bus side's are
        part.built()
    total = config.traffic.cycles * config.traffic.queries_per_cycle
    started = time.perf_counter()
    run_direct(parts)
    direct = total / (time.perf_counter() - started)

    async def bus() -> float:
        # The traffic source is built last, so that it opens the first cycle once every model
        # is loaded, as the clock starts (`running` starts each agent's traffic as soon as
        # that agent is ready).
        parts = wake_parts(config)
        parts = [p for p in parts if p.name != "gateway"] + [p for p in parts
                                                            if p.name == "gateway"]
        with EmbeddedBroker() as kafka, tempfile.TemporaryDirectory() as tmp:
            async with running(parts, projector_on(Path(tmp) / "b.duckdb"),
                               bootstrap=kafka.bootstrap) as stack:
                begun = time.perf_counter()
                await until_graded(stack, config.traffic, timeout=1800, progress=False)
                return total / (time.perf_counter() - begun)

    return direct, asyncio.run(bus())


async def hop(n: int) -> tuple[float, float]:
    """Events per second through one hop, steady state (consumer-group joins excluded on both
    sides: the clock starts at the first record): (raw aiokafka, the agent shell)."""
    with EmbeddedBroker() as kafka:
        await asyncio.to_thread(ensure_topics, kafka.bootstrap, 3)
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=5,
                                    enable_idempotence=False)
        await producer.start()
        for i in range(n):
            await producer.send(topic_of("pinger"), ping(f"r{i}"), key=f"r{i}".encode())
        await producer.flush()
        consumer = AIOKafkaConsumer(topic_of("pinger"), bootstrap_servers=kafka.bootstrap,
                                    group_id="raw", auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        begun, seen = 0.0, 0
        while seen < n:  # raw: consume, produce an answer, commit per batch
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            begun = begun or time.perf_counter()
            for records in batch.values():
                for rec in records:
                    await producer.send("raw-out", rec.value, key=rec.key)
                    seen += 1
            await producer.flush()
            await consumer.commit()
        raw = n / (time.perf_counter() - begun)
        await consumer.stop()
        await producer.stop()
        agent = Agent("ponger", ECHO, bootstrap=kafka.bootstrap)
        await agent.prepare()
        async with agent.broker:
            await agent.broker.start()
            while agent.handled == 0:
                await asyncio.sleep(0.001)
            begun, first = time.perf_counter(), agent.handled
            while agent.handled < n:
                await asyncio.sleep(0.001)
        return raw, (n - first) / (time.perf_counter() - begun)


def replay(n: int) -> tuple[float, float]:
    """Events per second: (raw kafka-python consume, replay into DuckDB)."""
    with EmbeddedBroker() as kafka, tempfile.TemporaryDirectory() as tmp:
        ensure_topics(kafka.bootstrap, 3)

        async def fill() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=5,
                                        enable_idempotence=False)
            await producer.start()
            for i in range(n):
                await producer.send(topic_of("pinger"), ping(f"r{i}"),
                                    key=f"r{i}".encode())
            await producer.flush()
            await producer.stop()

        asyncio.run(fill())
        consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 fetch_max_wait_ms=20, max_poll_records=5000)
        topic = topic_of("pinger")
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        begun, seen = time.perf_counter(), 0
        while seen < n:
            seen += sum(len(r) for r in consumer.poll(timeout_ms=1000).values())
        raw = n / (time.perf_counter() - begun)
        consumer.close()
        begun = time.perf_counter()
        replay_from_kafka(kafka.bootstrap, Path(tmp) / "r.duckdb", progress=False)
        return raw, n / (time.perf_counter() - begun)


def startup() -> float:
    """Seconds from launching `sleepwake run` to the first routed query on the log."""
    with EmbeddedBroker() as kafka, tempfile.TemporaryDirectory() as tmp:
        ensure_topics(kafka.bootstrap, 3)
        consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None,
                                 auto_offset_reset="earliest", fetch_max_wait_ms=20)
        topic = topic_of("selector")
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        begun = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", "--cycles", "1", "--queries", "8",
             "--bootstrap", kafka.bootstrap, "--db", str(Path(tmp) / "s.duckdb")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not consumer.poll(timeout_ms=100):
                if proc.poll() is not None:
                    raise RuntimeError("sleepwake run ended before routing a query")
            return time.perf_counter() - begun
        finally:
            proc.terminate()
            proc.wait()
            consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2, help="Serving: cycles to serve.")
    parser.add_argument("--queries", type=int, default=64, help="Serving: queries per cycle.")
    parser.add_argument("--events", type=int, default=20_000,
                        help="Events for the hop and replay measurements.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = SystemConfig(traffic=TrafficConfig(seed=args.seed, cycles=args.cycles,
                                                queries_per_cycle=args.queries),
                          sleep=SleepSettings(enabled=False))  # the wake bus is measured
    rows = []
    print("measuring serving (direct, then over the bus)...", file=sys.stderr)
    direct, bus = serving(config)
    rows.append(("serving (queries/s)", "policies called directly", direct, "through the bus",
                 bus, 0.5))
    print("measuring an event hop...", file=sys.stderr)
    raw, shell = asyncio.run(hop(args.events))
    rows.append(("event hop (events/s)", "raw aiokafka", raw, "agent shell", shell, 0.3))
    print("measuring replay...", file=sys.stderr)
    raw, replayed = replay(args.events)
    rows.append(("replay (events/s)", "raw kafka-python consume", raw, "replay into DuckDB",
                 replayed, 0.5))
    print("measuring start-up...", file=sys.stderr)
    first = startup()
    print(f"\nseed {args.seed}; command: python benchmarks/bench_bus.py --cycles {args.cycles} "
          f"--queries {args.queries} --events {args.events} --seed {args.seed}\n")
    print("| measure | baseline | rate | sleepwake | rate | ratio | target |")
    print("|---|---|---:|---|---:|---:|---:|")
    for name, base, b, ours, o, target in rows:
        verdict = "met" if o / b >= target else "missed"
        print(f"| {name} | {base} | {b:,.1f} | {ours} | {o:,.1f} | {o / b:.2f} | "
              f"≥ {target} ({verdict}) |")
    print(f"| start-up: `sleepwake run` to first routed query | | | | {first:.1f} s | | "
          f"≤ 8 s ({'met' if first <= 8 else 'missed'}) |")


if __name__ == "__main__":
    main()
