"""Routing as the system lives, against simple routers: accuracy, escalations, every cost.

    python benchmarks/bench_routing.py [--seeds 0 1 2] [--warmup-cycles 8] [--cycle-queries 64]
        [--queries 256] [--mixes default harder] [--embedders minilm ngram] [--plot FILE]

Every zoo member answers every query once (greedy decoding is deterministic) and the task's
own scorer grades it; that table stands in for the workers. The learning routers then serve
the stream in lockstep through the real pure policies — gateway cycles (`open_cycle`, with
its 5 % shadow sample), selector, meta-selector and grader — so they learn only what live
serving gives them: the grade of the member the selector chose, the top's answer where the
meta-selector escalated, and every member's answer on shadow queries; each cycle closes with
the grader's `CycleGraded`. After `--warmup-cycles` cycles the test cycle is served the same
way (its decisions use the evidence of the warm-up cycles only, ε-exploration included).
Test prompts that occur in the warm-up are dropped (the count is printed).

Rows: always-entry (each member); random routing over the entry tier; the selector's own
picks (no escalation) and the selector with the meta-selector, once per router embedding;
always-top; the oracle: the cheapest member that answers correctly, the top alone when no
member does. Costs are normalised so that always-top = 1.00: models (served answers and
escalations), shadow (the extra answers of the shadow sample) and router (the query's
embedding, `modelcore.router_embedding.router_cost`), summed in the total.

A second table compares the router embeddings: routing accuracy, router cost, throughput and
how well HDBSCAN clusters of each embedding recover the task cells (adjusted Rand index).
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agents.cohort import Cohort, cohort_from_zoo, member_dir
from agents.config import MetaSettings, SelectorSettings, TrafficConfig
from agents.gateway.policy import Traffic, open_cycle, query_id
from agents.grader.policy import GraderConfig
from agents.grader.policy import make_policy as grader_policy
from agents.meta_selector.policy import make_policy as meta_policy
from agents.selector.policy import make_policy as selector_policy
from events.envelope import make_envelope
from events.serving import (
    Escalated,
    QueryReceived,
    QueryRouted,
    ResponseGenerated,
    ResponseGraded,
)
from modelcore.backend import Answer, ModelBackend
from modelcore.cost import CostScale
from modelcore.router_embedding import EmbedderName, embedder, router_cost
from modelcore.tasks import FAMILIES, Task
from modelcore.world import Mix, TaskWorld
from runtime.policy import AnyEnvelope, Emit, Policy

MIXES = {
    "default": Mix(),  # easy 70 / medium 25 / hard 5 per family
    "harder": Mix(levels=tuple((f, (0.20, 0.40, 0.40)) for f in FAMILIES)),
}


Embedders = dict[EmbedderName, Callable[[Sequence[str]], np.ndarray]]
#: (family, member) -> (test queries the selector sent there, how many it answered right)
Picks = dict[tuple[str, str], tuple[int, int]]


@dataclass(frozen=True)
class Table:
    """Every member's answer to every query, and whether it is right."""

    tasks: list[Task]
    answers: dict[str, list[Answer]]
    ok: dict[str, np.ndarray]


@dataclass(frozen=True)
class Row:
    name: str
    accuracy: float
    escalation: float
    models: float  # served answers and escalations
    shadow: float  # the shadow sample's extra answers
    router: float  # the query embedding

    @property
    def total(self) -> float:
        return self.models + self.shadow + self.router


def answer_all(cohort: Cohort, tasks: list[Task], batch: int = 128) -> Table:
    top = cohort.cheapest(cohort.top_tier)
    answers: dict[str, list[Answer]] = {}
    for m in tqdm(cohort.members, desc="members answering", unit="model", leave=False):
        backend = ModelBackend.from_dir(member_dir(m.model_id),
                                        scale=CostScale.for_top(top.params))
        answers[m.model_id] = [a for i in range(0, len(tasks), batch)
                               for a in backend.generate([t.prompt for t in tasks[i:i + batch]])]
    ok = {m: np.array([grade_ok(t, a.text) for t, a in zip(tasks, ans, strict=True)])
          for m, ans in answers.items()}
    return Table(tasks, answers, ok)


def grade_ok(task: Task, answer: str) -> bool:
    from modelcore.grading import grade_reference

    return grade_reference(task, answer).success


def _fixed(value: Any) -> Callable[..., Any]:
    """The gateway's draw or embed for one cycle: what the table already holds, in order."""
    return lambda *_: value


def _envelope(e: Emit, source: str) -> AnyEnvelope:
    return make_envelope(e.data, source=source, subject=e.subject, correlationid=e.correlationid)


def serve_live(cohort: Cohort, table: Table, cycles: list[list[int]], vectors: np.ndarray,
               seed: int) -> list[AnyEnvelope]:
    """Serve `cycles` (indices into `table`) in lockstep through the pure policies and return
    the log. The table answers for the workers; nothing else reaches the learning agents."""
    cfg = TrafficConfig(seed=seed)
    peers = len(cohort.tier(0)) + len(cohort.tier(1)) - 1
    agents: dict[str, Policy[Any]] = {
        "selector": selector_policy(cohort, SelectorSettings().policy_config(seed)),
        "meta_selector": meta_policy(cohort, MetaSettings().policy_config()),
        "grader": grader_policy(GraderConfig(shadow_peers=peers)),
    }
    states = {name: p.initial for name, p in agents.items()}
    tiers = {m.model_id: m.tier for m in cohort.members}
    index: dict[str, int] = {}
    log: list[AnyEnvelope] = []

    def work(data: object) -> list[AnyEnvelope]:
        """What a worker answers to a routed or escalated query: its row of the table."""
        if isinstance(data, QueryRouted):
            model, shadow = data.model_id, data.shadow
        elif isinstance(data, Escalated):
            model, shadow = data.to_model, False
        else:
            return []
        a = table.answers[model][index[data.query_id]]
        r = ResponseGenerated(query_id=data.query_id, cycle=data.cycle, model_id=model,
                              tier=tiers[model], answer=a.text, confidence=a.confidence,
                              prompt_tokens=a.prompt_tokens, answer_tokens=a.answer_tokens,
                              cost_flops=a.flops, cost_norm=a.cost, shadow=shadow)
        return [make_envelope(r, source=f"worker-{model}", subject=data.query_id,
                              correlationid=f"cycle-{data.cycle}")]

    for c, idx in enumerate(cycles):
        traffic = Traffic(seed, len(cycles), len(idx), cfg.shadow, "lockstep")
        tasks = [table.tasks[j] for j in idx]
        opening = open_cycle(traffic, _fixed(tasks), _fixed(vectors[idx]), c)
        received = [e.data.query_id for e in opening if isinstance(e.data, QueryReceived)]
        index.update(zip(received, idx, strict=True))
        queue = deque(_envelope(e, "gateway") for e in opening)
        while queue:
            event = queue.popleft()
            log.append(event)
            for name, policy in agents.items():
                out, states[name] = policy.react(states[name], event)
                queue.extend(_envelope(e, name) for e in out)
            queue.extend(work(event.data))
        if states["grader"].closed != c:
            raise RuntimeError(f"cycle {c} was not closed by the grader")
    return log


def live_rows(log: list[AnyEnvelope], cycle: int, label: str, table: Table,
              test: list[int], router: np.ndarray) -> tuple[list[Row], Picks]:
    """The selector's picks alone and with escalation, from the test cycle's events, and
    where the picks went per family (how many, how many right)."""
    pos = {query_id(cycle, i): i for i in range(len(test))}
    routed = np.empty(len(test), dtype=object)
    escalated = np.zeros(len(test), dtype=bool)
    final = np.zeros(len(test), dtype=bool)
    served = np.zeros(len(test))
    entry_cost = np.zeros(len(test))
    shadow = np.zeros(len(test))
    for e in log:
        d = e.data
        i = pos.get(getattr(d, "query_id", ""))
        if i is None or getattr(d, "cycle", -1) != cycle:
            continue
        if isinstance(d, QueryRouted) and not d.shadow:
            routed[i] = d.model_id
        elif isinstance(d, Escalated):
            escalated[i] = True
        elif isinstance(d, ResponseGraded) and d.final:
            final[i] = d.success
        elif isinstance(d, ResponseGenerated):
            if d.shadow:
                shadow[i] += d.cost_norm
            else:
                served[i] += d.cost_norm
                if d.tier == 0:
                    entry_cost[i] = d.cost_norm
    alone = np.array([table.ok[str(m)][j] for m, j in zip(routed, test, strict=True)])
    picks: dict[tuple[str, str], tuple[int, int]] = {}
    for m, j, right in zip(routed, test, alone, strict=True):
        n, k = picks.get((table.tasks[j].family, str(m)), (0, 0))
        picks[(table.tasks[j].family, str(m))] = (n + 1, k + int(right))
    r, s = float(router.mean()), float(shadow.mean())
    return [Row(f"selector, {label} (its picks, no escalation)", float(alone.mean()), 0.0,
                float(entry_cost.mean()), s, r),
            Row(f"selector + meta-selector, {label}", float(final.mean()),
                float(escalated.mean()), float(served.mean()), s, r)], picks


def baseline_rows(cohort: Cohort, table: Table, test: list[int], seed: int) -> list[Row]:
    entry = [m.model_id for m in cohort.tier(0)]
    top = cohort.cheapest(cohort.top_tier).model_id
    cost = {m: np.array([table.answers[m][j].cost for j in test]) for m in table.answers}
    ok = {m: table.ok[m][test] for m in table.ok}
    n = len(test)
    rows = [Row(f"always-entry ({m})", float(ok[m].mean()), 0.0, float(cost[m].mean()), 0, 0)
            for m in entry]
    picks = np.random.default_rng(seed).integers(0, len(entry), n)
    rows.append(Row("random routing (entry tier)",
                    float(np.mean([ok[entry[p]][i] for i, p in enumerate(picks)])), 0.0,
                    float(np.mean([cost[entry[p]][i] for i, p in enumerate(picks)])), 0, 0))
    rows.append(Row("always-top", float(ok[top].mean()), 0.0, float(cost[top].mean()), 0, 0))
    members = [*entry, top]
    best = [min((m for m in members if ok[m][i]), key=lambda m: (cost[m][i], m), default=top)
            for i in range(n)]
    rows.append(Row("oracle (cheapest correct member)",
                    float(np.mean([ok[m][i] for i, m in enumerate(best)])),
                    float(np.mean([m == top for m in best])),
                    float(np.mean([cost[m][i] for i, m in enumerate(best)])), 0, 0))
    return rows


def run_one(cohort: Cohort, mix: str, seed: int, args: argparse.Namespace,
            embedders: Embedders) -> tuple[list[Row], int, int, dict[str, Picks]]:
    """All rows for one mix and seed, the test size, how many test prompts were dropped and
    the selector's picks per embedder."""
    world = TaskWorld(seed=seed, mix=MIXES[mix])
    warm = [world.queries(c, args.cycle_queries) for c in range(args.warmup_cycles)]
    seen = {t.prompt for ts in warm for t in ts}
    drawn = world.queries(args.warmup_cycles, args.queries)
    test_tasks = [t for t in drawn if t.prompt not in seen]
    tasks = [t for ts in warm for t in ts] + test_tasks
    table = answer_all(cohort, tasks)
    cycles, start = [], 0
    for ts in [*warm, test_tasks]:
        cycles.append(list(range(start, start + len(ts))))
        start += len(ts)
    test = cycles[-1]
    top_params = cohort.cheapest(cohort.top_tier).params
    rows = baseline_rows(cohort, table, test, seed)
    prompts = [t.prompt for t in tasks]
    picks: dict[str, Picks] = {}
    for name, fn in embedders.items():
        vectors = fn(prompts)
        log = serve_live(cohort, table, cycles, vectors, seed)
        router = np.array([router_cost(name, t.prompt, top_params) for t in test_tasks])
        more, picks[name] = live_rows(log, len(cycles) - 1, name, table, test, router)
        rows += more
    return rows, len(test), len(drawn) - len(test_tasks), picks


def _order(name: str) -> int:
    for k, prefix in enumerate(("always-entry", "random", "selector,", "selector +",
                                "always-top", "oracle")):
        if name.startswith(prefix):
            return k
    return 99


def _mean_sd(v: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single seed)."""
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def summarise(runs: list[list[Row]]) -> list[tuple[str, dict[str, tuple[float, float]]]]:
    """Mean and sample sd over seeds of every measure of every row."""
    names = sorted({r.name for run in runs for r in run}, key=lambda n: (_order(n), n))
    out = []
    for name in names:
        rows = [r for run in runs for r in run if r.name == name]
        stats = {key: _mean_sd(np.array([getattr(r, key) for r in rows]))
                 for key in ("accuracy", "escalation", "models", "shadow", "router", "total")}
        out.append((name, stats))
    return out


def _ms(m: float, s: float, digits: int = 3) -> str:
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _cost(m: float, s: float) -> str:
    if m == 0:
        return "0"
    if m < 0.01:
        return f"{m:.1e}"
    return _ms(m, s, 2 if m >= 10 else 3)


def print_table(mix: str, summary: list[tuple[str, dict[str, tuple[float, float]]]]) -> None:
    print(f"\nmix: {mix}\n")
    print("| router | accuracy | escalation rate | models | shadow | router (embedding) "
          "| total cost/query |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, s in summary:
        bold = "**" if name.startswith("selector + meta") else ""
        print(f"| {bold}{name}{bold} | {_ms(*s['accuracy'])} | {_ms(*s['escalation'])} | "
              f"{_cost(*s['models'])} | {_cost(*s['shadow'])} | {_cost(*s['router'])} | "
              f"{_cost(*s['total'])} |")


def print_picks(mix: str, seed: int, entry: list[str], picks: dict[str, Picks]) -> None:
    """Where the selector sent each family's test queries (sent / right), one seed."""
    print(f"\nselector picks on the test cycle, seed {seed}, {mix} mix (sent / right):\n")
    print("| family | embedding | " + " | ".join(entry) + " |\n|---|---|"
          + "---:|" * len(entry))
    for family in FAMILIES:
        for name, p in picks.items():
            cells = [p.get((family, m), (0, 0)) for m in entry]
            print(f"| {family} | {name} | " + " | ".join(f"{n} / {k}" for n, k in cells) + " |")


def throughput(fn: Callable[[Sequence[str]], np.ndarray], prompts: list[str], batch: int,
               n: int) -> float:
    fn(prompts[:4])  # load the model, if any
    started = time.perf_counter()
    for i in range(0, n, batch):
        fn(prompts[i:i + batch])
    return n / (time.perf_counter() - started)


def cell_ari(vectors: np.ndarray, tasks: list[Task], min_cluster_size: int
             ) -> tuple[float, float, float]:
    """ARI of HDBSCAN's clusters (noise as one more label) against family x level and against
    family, and the number of clusters found."""
    import hdbscan
    from sklearn.metrics import adjusted_rand_score

    labels = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size).fit_predict(vectors)
    return (float(adjusted_rand_score([f"{t.family}/{t.level}" for t in tasks], labels)),
            float(adjusted_rand_score([t.family for t in tasks], labels)),
            float(len(set(labels.tolist()) - {-1})))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--warmup-cycles", type=int, default=8)
    parser.add_argument("--cycle-queries", type=int, default=64)
    parser.add_argument("--queries", type=int, default=256, help="Test queries drawn.")
    parser.add_argument("--mixes", nargs="+", default=list(MIXES), choices=list(MIXES))
    parser.add_argument("--embedders", nargs="+", default=["minilm", "ngram"],
                        choices=["minilm", "ngram"])
    parser.add_argument("--ari-queries", type=int, default=600,
                        help="Queries (all nine cells equally likely) clustered for the ARI.")
    parser.add_argument("--min-cluster-size", type=int, default=15)
    parser.add_argument("--plot", type=Path, default=None,
                        help="Also draw accuracy against total cost per router into this PNG.")
    args = parser.parse_args()
    started = time.perf_counter()
    cohort = cohort_from_zoo()
    names: list[EmbedderName] = args.embedders
    embedders = {n: embedder(n) for n in names}
    summaries: dict[str, list[tuple[str, dict[str, tuple[float, float]]]]] = {}
    runs: dict[str, list[list[Row]]] = {}
    sizes: dict[str, list[tuple[int, int]]] = {}
    first_picks: dict[str, dict[str, Picks]] = {}
    for mix in args.mixes:
        for seed in tqdm(args.seeds, desc=f"seeds ({mix} mix)", unit="seed"):
            rows, n, dropped, picks = run_one(cohort, mix, seed, args, embedders)
            runs.setdefault(mix, []).append(rows)
            sizes.setdefault(mix, []).append((n, dropped))
            first_picks.setdefault(mix, picks)
        summaries[mix] = summarise(runs[mix])
    warm = args.warmup_cycles * args.cycle_queries
    print(f"\nseeds {' '.join(map(str, args.seeds))}; {args.warmup_cycles} warm-up cycles of "
          f"{args.cycle_queries} queries ({warm}) served live, then one test cycle of "
          f"{args.queries} drawn; mean ± sd over seeds; command: python "
          f"benchmarks/bench_routing.py --seeds {' '.join(map(str, args.seeds))} "
          f"--warmup-cycles {args.warmup_cycles} --cycle-queries {args.cycle_queries} "
          f"--queries {args.queries}")
    for mix in args.mixes:
        kept = ", ".join(f"{n} ({d} dropped)" for n, d in sizes[mix])
        print(f"{mix} mix: test queries kept per seed (dropped: prompt seen in warm-up): {kept}")
        print_table(mix, summaries[mix])
        print_picks(mix, args.seeds[0], [m.model_id for m in cohort.tier(0)], first_picks[mix])
    choice(args, names, embedders, runs)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    if args.plot:
        plot(summaries, args.plot, f"seeds {args.seeds}, mean ± sd")


def choice(args: argparse.Namespace, names: list[EmbedderName], embedders: Embedders,
           runs: dict[str, list[list[Row]]]) -> None:
    """The router embedding table: accuracy and cost from the runs (with the paired per-seed
    difference to the first embedder, since seeds move both alike), speed, cell recovery."""
    import torch

    torch.set_num_threads(1)  # as the workers run: more threads wait on each other here
    uniform = Mix(levels=tuple((f, (1.0, 1.0, 1.0)) for f in FAMILIES))
    speed_prompts = [t.prompt for t in TaskWorld(seed=0).queries(99, 1024)]
    mixes = " / ".join(args.mixes)
    print(f"\n| router embedding | selector accuracy ({mixes}) | + meta-selector ({mixes}) "
          f"| difference to {names[0]}, paired by seed | router cost/query "
          f"| total cost/query, + meta-selector | queries/s @1 | queries/s @64 "
          "| ARI family x level | ARI family | clusters |\n|---|" + "---:|" * 10)

    def stat(mix: str, row: str, key: str = "accuracy") -> np.ndarray:
        return np.array([getattr(next(r for r in run if r.name == row), key)
                         for run in runs[mix]])

    def ms(v: np.ndarray, digits: int = 3) -> str:
        return _ms(*_mean_sd(v), digits)

    for name in tqdm(names, desc="embedding speed and clusters", unit="embedder"):
        fn = embedders[name]
        aris = []
        for seed in args.seeds:
            tasks = TaskWorld(seed=seed, mix=uniform).queries(0, args.ari_queries)
            aris.append(cell_ari(fn([t.prompt for t in tasks]), tasks, args.min_cluster_size))
        a = np.array(aris)
        at1 = throughput(fn, speed_prompts, 1, 128)
        at64 = throughput(fn, speed_prompts, 64, 1024)
        sel, meta = f"selector, {name} (its picks, no escalation)", \
            f"selector + meta-selector, {name}"
        first = f"selector + meta-selector, {names[0]}"
        cols = [" / ".join(ms(stat(m, sel)) for m in args.mixes),
                " / ".join(ms(stat(m, meta)) for m in args.mixes),
                " / ".join(f"{ms(stat(m, meta) - stat(m, first))}" for m in args.mixes),
                " / ".join(_cost(*_mean_sd(stat(m, meta, "router"))) for m in args.mixes),
                " / ".join(_cost(*_mean_sd(stat(m, meta, "total"))) for m in args.mixes)]
        print(f"| {name} | " + " | ".join(cols) + f" | {at1:,.0f} | {at64:,.0f} | "
              f"{ms(a[:, 0], 2)} | {ms(a[:, 1], 2)} | {a[:, 2].min():.0f}-{a[:, 2].max():.0f} |")
    print(f"\nARI: HDBSCAN(min_cluster_size={args.min_cluster_size}) on {args.ari_queries} "
          "queries per seed, every cell equally likely; noise counts as one more cluster. "
          "Throughput: one torch thread, 128 queries one by one, 1,024 in batches of 64.")


def plot(summaries: dict[str, list[tuple[str, dict[str, tuple[float, float]]]]], out: Path,
         subtitle: str) -> None:
    """Accuracy against total cost: the routers up and to the left are the ones worth having.
    A legend, not labels: several routers sit near accuracy 1.00 and labels would collide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(6.0 * len(summaries), 6.2),
                             squeeze=False, sharey=True)
    markers = "osDv^<>pPX*h"
    for ax, (mix, summary) in zip(axes[0], summaries.items(), strict=True):
        for k, (name, s) in enumerate(summary):
            (acc, acc_sd), (cost, cost_sd) = s["accuracy"], s["total"]
            ax.errorbar(cost, acc, xerr=cost_sd, yerr=acc_sd, fmt=markers[k % len(markers)],
                        ms=7, capsize=3, color=plt.get_cmap("tab10")(k % 10),
                        label=name.replace(" (its picks, no escalation)", ", no escalation"))
        ax.set_xscale("log")
        ax.set_xlabel("total cost per query, router included\n(always-top = 1.00; log scale)")
        ax.set_title(f"{mix} mix", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"Routing on the shipped zoo, served live ({subtitle})", fontsize=10)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot written to {out}")


if __name__ == "__main__":
    main()
