"""Selector decision latency for N members with K prototypes each in d = 384, against one call
of an entry-tier model (the paper claims routing is ~10^3 times cheaper than a model call).

    python benchmarks/bench_selector.py [--members 20] [--k 10] [--queries 2000] [--seed 0]

Times `agents.selector.policy.route` (eq. 4 over every member's prototypes, vectorised, plus
decoding the query's embedding from its event form) and `ModelBackend.generate` at batch 1
for the shipped entry member. Target: p99 < 1 ms.
"""

from __future__ import annotations

import argparse
import time
from types import MappingProxyType

import numpy as np

from agents.cohort import Cohort, Member, cohort_from_zoo, member_dir
from agents.selector.policy import SelectorConfig, State, route
from agents.selector.prototypes import Bank
from events.serving import QueryReceived
from events.vectors import encode_vector
from modelcore.backend import ModelBackend
from modelcore.world import TaskWorld


def unit_rows(rng: np.random.Generator, n: int, d: int = 384) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cohort = Cohort(tuple(Member(f"m{i:02d}", 0, 100_000, 0.5) for i in range(args.members)))
    banks = {m.model_id: Bank(unit_rows(rng, args.k), (1,) * args.k) for m in cohort.members}
    state = State(banks=MappingProxyType(banks))
    cfg = SelectorConfig(seed=args.seed)
    queries = [QueryReceived(query_id=f"q{i}", cycle=0, text="x", embedding=encode_vector(v))
               for i, v in enumerate(unit_rows(rng, args.queries))]
    for q in queries[:50]:
        route(cohort, cfg, state, q)
    routing = []
    for q in queries:
        t = time.perf_counter()
        route(cohort, cfg, state, q)
        routing.append(time.perf_counter() - t)
    entry = cohort_from_zoo().tier(0)[0]
    backend = ModelBackend.from_dir(member_dir(entry.model_id))
    prompts = [t.prompt for t in TaskWorld(seed=args.seed).queries(0, 200)]
    backend.generate(prompts[:5])
    calls = []
    for p in prompts:
        t = time.perf_counter()
        backend.generate([p])
        calls.append(time.perf_counter() - t)
    r50, r99 = percentiles(routing)
    c50, c99 = percentiles(calls)
    print(f"N={args.members}, K={args.k}, d=384, {args.queries} decisions, seed {args.seed}\n")
    print("| measure | p50 (ms) | p99 (ms) |\n|---|---:|---:|")
    print(f"| selector decision (route) | {r50:.3f} | {r99:.3f} |")
    print(f"| entry model call, batch 1 ({entry.model_id}) | {c50:.2f} | {c99:.2f} |")
    print(f"\nmodel call / routing decision at p50: {c50 / r50:,.0f}x")


if __name__ == "__main__":
    main()
