"""Cycle-0 static serving against simple routers: accuracy, escalation rate, cost per query.

    python benchmarks/bench_routing.py [--seed 0] [--warmup 512] [--queries 1024]

Every zoo member answers every query once (greedy decoding is deterministic), the task's own
scorer grades each answer, and each router is then replayed over the same table:

- always-entry (each member): that entry member answers everything;
- random routing: a uniformly random entry member (seeded), no escalation;
- selector: eq. 4 over prototypes built from the warm-up stream (cycle 0), no escalation;
- selector + meta-selector: the selector's member, escalated to the top by Algorithm 1,
  with calibration and θ_crit fitted on the warm-up stream;
- always-top: the teacher answers everything;
- oracle router: an entry member that answers correctly if any does, else the top.

Warm-up queries come from cycle 0 of the stream and test queries from cycle 1, so nothing is
evaluated on what built the prototypes. Costs are normalised so that always-top = 1.00.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agents.cohort import Cohort, cohort_from_zoo, member_dir
from agents.meta_selector.policy import MetaConfig
from agents.meta_selector.policy import make_policy as meta_policy
from agents.selector.policy import SelectorConfig, route
from agents.selector.policy import make_policy as selector_policy
from events.envelope import make_envelope
from events.serving import (
    CycleGraded,
    Escalated,
    QueryReceived,
    ResponseGenerated,
    ResponseGraded,
    TaskRef,
)
from events.vectors import encode_vector
from modelcore.backend import Answer, ModelBackend
from modelcore.cost import CostScale
from modelcore.embeddings import embed
from modelcore.grading import grade_reference
from modelcore.tasks import Task
from modelcore.world import TaskWorld
from runtime.policy import Policy


@dataclass(frozen=True)
class Table:
    tasks: list[Task]
    vectors: np.ndarray
    answers: dict[str, list[Answer]]
    ok: dict[str, np.ndarray]


def answer_all(cohort: Cohort, tasks: list[Task], batch: int = 128) -> Table:
    top = cohort.cheapest(cohort.top_tier)
    answers: dict[str, list[Answer]] = {}
    for m in tqdm(cohort.members, desc="members answering", unit="model"):
        backend = ModelBackend.from_dir(member_dir(m.model_id),
                                        scale=CostScale.for_top(top.params))
        answers[m.model_id] = [a for i in range(0, len(tasks), batch)
                               for a in backend.generate([t.prompt for t in tasks[i:i + batch]])]
    ok = {m: np.array([grade_reference(t, a.text).success for t, a in zip(tasks, ans,
                                                                         strict=True)])
          for m, ans in answers.items()}
    return Table(tasks, embed([t.prompt for t in tasks]), answers, ok)


def query_event(t: Task, vec: np.ndarray, qid: str, cycle: int) -> QueryReceived:
    return QueryReceived(query_id=qid, cycle=cycle, text=t.prompt, embedding=encode_vector(vec),
                         task=TaskRef(family=t.family, level=t.level, seed=t.seed,
                                      index=t.index))


def warm(cohort: Cohort, table: Table, policy: Policy, graded_final: bool = False) -> object:
    """Fold the warm-up stream into a policy as if every member had answered as shadow."""
    state = policy.initial
    for i, (t, vec) in enumerate(zip(table.tasks, table.vectors, strict=True)):
        qid = f"w{i}"
        state = policy.evolve(state, make_envelope(query_event(t, vec, qid, 0), source="b",
                                                   subject=qid))
        for m in cohort.members:
            a = table.answers[m.model_id][i]
            g = ResponseGraded(query_id=qid, cycle=0, model_id=m.model_id, tier=m.tier,
                               quality=float(table.ok[m.model_id][i]),
                               success=bool(table.ok[m.model_id][i]), method="reference",
                               final=graded_final, shadow=True, confidence=a.confidence,
                               cost_norm=a.cost)
            state = policy.evolve(state, make_envelope(g, source="b", subject=qid))
    closing = CycleGraded(cycle=0, queries=len(table.tasks),
                          grades=len(table.tasks) * len(cohort.members))
    return policy.evolve(state, make_envelope(closing, source="b", subject="cycle-0"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--plot", type=Path, default=None,
                        help="Also draw accuracy against cost per router into this PNG.")
    args = parser.parse_args()
    started = time.perf_counter()
    cohort = cohort_from_zoo()
    entry = [m.model_id for m in cohort.tier(0)]
    top = cohort.cheapest(cohort.top_tier).model_id
    world = TaskWorld(seed=args.seed)
    warmup = answer_all(cohort, world.queries(0, args.warmup))
    test = answer_all(cohort, world.queries(1, args.queries))
    n = len(test.tasks)
    cost = {m: np.array([a.cost for a in test.answers[m]]) for m in test.answers}
    rows: list[tuple[str, float, float, float]] = []

    def add(name: str, picks: list[str], escalated: np.ndarray | None = None) -> None:
        esc = escalated if escalated is not None else np.zeros(n, dtype=bool)
        acc = np.array([test.ok[top][i] if esc[i] else test.ok[p][i]
                        for i, p in enumerate(picks)])
        c = np.array([cost[p][i] + (cost[top][i] if esc[i] else 0.0)
                      for i, p in enumerate(picks)])
        rows.append((name, float(acc.mean()), float(esc.mean()), float(c.mean())))

    for m in entry:
        add(f"always-entry ({m})", [m] * n)
    rng = np.random.default_rng(args.seed)
    add("random routing (entry tier)", [entry[int(j)] for j in rng.integers(0, len(entry), n)])
    sel_cfg = SelectorConfig(epsilon=0.0, seed=args.seed)
    sel_state = warm(cohort, warmup, selector_policy(cohort, sel_cfg))
    picks = [route(cohort, sel_cfg, sel_state, query_event(t, v, f"t{i}", 1)).model_id  # type: ignore[arg-type]
             for i, (t, v) in enumerate(zip(test.tasks, test.vectors, strict=True))]
    add("selector (cycle 0, static)", picks)
    meta = meta_policy(cohort, MetaConfig())
    meta_state = warm(cohort, warmup, meta)
    escalated = np.zeros(n, dtype=bool)
    for i, (t, v) in enumerate(zip(test.tasks, test.vectors, strict=True)):
        qid = f"t{i}"
        q = make_envelope(query_event(t, v, qid, 1), source="b", subject=qid)
        a = test.answers[picks[i]][i]
        r = make_envelope(ResponseGenerated(
            query_id=qid, cycle=1, model_id=picks[i], tier=0, answer=a.text,
            confidence=a.confidence, prompt_tokens=a.prompt_tokens,
            answer_tokens=a.answer_tokens, cost_flops=a.flops, cost_norm=a.cost),
            source="b", subject=qid)
        s = meta.evolve(meta_state, q)
        verdict = meta.decide(s, r)
        escalated[i] = isinstance(verdict[0].data, Escalated)
    add("selector + meta-selector (escalation)", picks, escalated)
    add("always-top", [top] * n)
    oracle = [next((m for m in entry if test.ok[m][i]), top) for i in range(n)]
    add("oracle router", [p if p != top else entry[0] for p in oracle],
        np.array([p == top for p in oracle]))
    print(f"seed {args.seed}, {args.warmup} warm-up + {n} test queries, "
          f"{time.perf_counter() - started:.0f}s; command: python benchmarks/bench_routing.py "
          f"--seed {args.seed} --warmup {args.warmup} --queries {args.queries}\n")
    print("| router | accuracy | escalation rate | cost/query |\n|---|---:|---:|---:|")
    for name, acc, esc, c in rows:
        print(f"| {name} | {acc:.3f} | {esc:.3f} | {c:.3f} |")
    if args.plot:
        plot(rows, args.plot, f"seed {args.seed}, {n} test queries")


def plot(rows: list[tuple[str, float, float, float]], out: Path, subtitle: str) -> None:
    """Accuracy against cost: the routers up and to the left are the ones worth having."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, acc, _, cost in rows:
        ax.scatter(cost, acc, s=60)
        below = "escalation" in name  # its label would run into always-top
        ax.annotate(name, (cost, acc), textcoords="offset points", fontsize=8,
                    xytext=(-60, -14) if below else (6, -3))
    ax.set_xlabel("cost per query (always-top = 1.00)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Routing on the shipped zoo ({subtitle})", fontsize=10)
    ax.set_xlim(0.4, 1.45)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot written to {out}")


if __name__ == "__main__":
    main()
