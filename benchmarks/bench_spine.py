"""Spine throughput: end to end through the embedded broker, and replay into DuckDB.

    python benchmarks/bench_spine.py [--events 20000] [--replay-events 100000] [--seed 0]

Targets: end-to-end >= 5k events/s, replay from the archive >= 50k events/s.
Prints a markdown table; figures depend on the machine (2 CPU cores here).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from events.codec import encode
from events.envelope import make_envelope
from events.proof import Ping
from projections.projector import Projector
from projections.replay import replay_from_archive, replay_from_kafka
from projections.rows import Position, row
from projections.store import Store
from runtime.admin import ensure_topics
from runtime.embedded import EmbeddedBroker
from runtime.security import aiokafka_kwargs, security_from_env

TOPIC = "sw.pinger.v1"


def events(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [encode(make_envelope(
        Ping(rally=f"r{rng.randrange(n // 10 + 1)}", n=rng.randrange(1000), limit=1000),
        source="bench", subject=f"r{i % 1000}", correlationid=f"cycle-{i // 1000}",
    )) for i in range(n)]


async def end_to_end(bootstrap: str, payloads: list[bytes], db: Path) -> tuple[float, float]:
    """Seconds to produce all, and seconds until the projector has applied all."""
    projector = Projector(db, bootstrap=bootstrap)
    await projector.prepare()
    async with projector.broker:
        await projector.broker.start()
        await asyncio.sleep(4)  # group join, so the clock measures flow, not the join
        producer = AIOKafkaProducer(**aiokafka_kwargs(security_from_env()),
                                    bootstrap_servers=bootstrap, linger_ms=5,
                                    max_batch_size=256 * 1024)
        await producer.start()
        start = time.perf_counter()
        futures = [await producer.send(TOPIC, p, key=str(i % 1000).encode())
                   for i, p in enumerate(payloads)]
        await asyncio.gather(*futures)
        produced = time.perf_counter() - start
        await producer.stop()
        while projector.applied < len(payloads):
            await asyncio.sleep(0.01)
        consumed = time.perf_counter() - start
    projector.store.close()
    return produced, consumed


def build_archive(path: Path, payloads: list[bytes]) -> None:
    from events.codec import decode

    store = Store(path)
    for start in range(0, len(payloads), 20_000):
        chunk = payloads[start:start + 20_000]
        store.apply([row(decode(p), Position(TOPIC, 0, start + i), p)
                     for i, p in enumerate(chunk)])
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--replay-events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        ensure_topics(broker.bootstrap, 3)
        payloads = events(args.events, args.seed)
        produced, consumed = asyncio.run(
            end_to_end(broker.bootstrap, payloads, Path(tmp) / "live.duckdb"))
        rows.append(("produce (aiokafka -> tansu)", args.events, args.events / produced))
        rows.append(("end to end (produce -> projected)", args.events, args.events / consumed))
        start = time.perf_counter()
        replay_from_kafka(broker.bootstrap, Path(tmp) / "kafka.duckdb", progress=False)
        rows.append(("replay from kafka into DuckDB", args.events,
                     args.events / (time.perf_counter() - start)))
        big = events(args.replay_events, args.seed + 1)
        build_archive(Path(tmp) / "archive.duckdb", big)
        start = time.perf_counter()
        replay_from_archive(Path(tmp) / "archive.duckdb", Path(tmp) / "re.duckdb", progress=False)
        rows.append(("replay from archive into DuckDB", args.replay_events,
                     args.replay_events / (time.perf_counter() - start)))
    print(f"| measure (seed {args.seed}) | events | events/s |")
    print("|---|---:|---:|")
    for name, n, rate in rows:
        print(f"| {name} | {n:,} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
