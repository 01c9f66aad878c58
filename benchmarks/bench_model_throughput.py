"""Answers/s per tier at batch 1 and 32, and embeddings/s, on the default query stream.

python benchmarks/bench_model_throughput.py --threads 1
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch
import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from modelcore.embeddings import embed
from modelcore.world import TaskWorld
from modelcore.zoo_table import load_zoo


def _rate(
    call: Callable[[list[str]], object], items: list[str], batch: int, min_seconds: float = 3.0
) -> float:
    """Items per second of `call(chunk)` over `items` in chunks of `batch` (after a warm-up)."""
    call(items[:batch])
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        for i in range(0, len(items), batch):
            call(items[i : i + batch])
            done += len(items[i : i + batch])
            if time.perf_counter() - t0 >= min_seconds:
                break
    return done / (time.perf_counter() - t0)


def main(threads: int = 1, n: int = 256) -> None:
    torch.set_num_threads(threads)
    queries = [t.prompt for t in TaskWorld(seed=0).queries(0, n)]
    print(f"{threads} CPU threads, default stream (seed 0), greedy, max 16 new tokens\n")
    print("| model | params | answers/s @1 | answers/s @32 |")
    print("|---|---|---|---|")
    for name, b in load_zoo().items():
        r1 = _rate(b.generate, queries, 1)
        r32 = _rate(b.generate, queries, 32)
        print(f"| {name} | {b.params:,} | {r1:.0f} | {r32:.0f} |")
    e1 = _rate(lambda xs: embed(xs, batch_size=1), queries, 1)
    e64 = _rate(lambda xs: embed(xs, batch_size=64), queries, 64)
    print(f"\nembeddings (all-MiniLM-L6-v2): {e1:.0f}/s at batch 1, {e64:.0f}/s at batch 64")


if __name__ == "__main__":
    typer.run(main)
