"""Traffic source: opens cycles of benchmark queries, announcing each cycle's size.

Lockstep (docs/design.md, 'Time, order and replay'): cycle c+1 opens only once cycle c is
closed: by the grader (`CycleGraded`: every answer of it graded, shadow ones included) or,
with the sleep half running, by the envelope broker (`ControlPhaseCompleted`, which comes
after the grading, the gap map and every training and canary verdict due at c).
Free-running: every cycle opens at start and traffic never waits. Queries are a pure
function of (seed, cycle): the task world draws them and the router's embedding embeds them
(its cost travels with each query). The run's configuration is announced first
(`RunConfigured`), so the log names what made it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from events.control import ControlPhaseCompleted
from events.serving import CycleGraded, CycleOpened, QueryReceived, RunConfigured, TaskRef
from events.vectors import encode_vector
from modelcore.tasks import Task
from runtime.policy import AnyEnvelope, Emit, Policy

Embed = Callable[[Sequence[str]], np.ndarray]
RouterCost = Callable[[str], float]  # normalised cost of embedding one query
Draw = Callable[[int, int], list[Task]]  # (cycle, n) -> tasks


@dataclass(frozen=True)
class Traffic:
    seed: int
    cycles: int
    queries_per_cycle: int
    shadow: float
    mode: Literal["lockstep", "free"]
    controlled: bool = False  # the sleep half runs: a cycle ends with its control phase


@dataclass(frozen=True)
class State:
    opened: frozenset[int] = frozenset()
    closed: frozenset[int] = frozenset()  # cycles the grader closed (CycleGraded)
    controlled: frozenset[int] = frozenset()  # cycles whose control phase is in


def query_id(cycle: int, i: int) -> str:
    return f"c{cycle:04d}-q{i:05d}"


def is_shadow(seed: int, qid: str, share: float) -> bool:
    digest = hashlib.sha256(f"shadow|{seed}|{qid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _free(text: str) -> float:
    return 0.0


def open_cycle(t: Traffic, draw: Draw, embed: Embed, cycle: int,
               router_cost: RouterCost = _free) -> list[Emit]:
    """A cycle's opening and its queries; ids keyed by what they are (reproducible)."""
    tasks = draw(cycle, t.queries_per_cycle)
    vectors = embed([task.prompt for task in tasks])
    corr = f"cycle-{cycle}"
    emits = [Emit(CycleOpened(cycle=cycle, queries=len(tasks), mode=t.mode),
                  subject=corr, correlationid=corr, key=f"open|{cycle}")]
    for i, (task, vec) in enumerate(zip(tasks, vectors, strict=True)):
        qid = query_id(cycle, i)
        emits.append(Emit(QueryReceived(
            query_id=qid, cycle=cycle, text=task.prompt, embedding=encode_vector(vec),
            task=TaskRef(family=task.family, level=task.level, seed=task.seed, index=task.index),
            shadow=is_shadow(t.seed, qid, t.shadow), router_cost=router_cost(task.prompt),
        ), subject=qid, correlationid=corr, key=f"query|{qid}"))
    return emits


def make_policy(t: Traffic, draw: Draw, embed: Embed, config: str = "",
                router_cost: RouterCost = _free) -> Policy[State]:
    """`config` (JSON) is announced once, first, so the log names what produced it;
    `router_cost` prices each query's embedding, which its serving cost includes."""
    def start(state: State) -> list[Emit]:
        due = range(t.cycles) if t.mode == "free" else range(1)
        announce = [Emit(RunConfigured(config=config), subject="run", key="run-config")] \
            if config and not state.opened else []
        return announce + [e for c in due if c not in state.opened
                           for e in open_cycle(t, draw, embed, c, router_cost)]

    closing = ControlPhaseCompleted if t.controlled else CycleGraded

    def decide(state: State, event: AnyEnvelope) -> list[Emit]:
        g = event.data
        if t.mode != "lockstep" or not isinstance(g, closing):
            return []
        nxt = g.cycle + 1
        if nxt < t.cycles and nxt not in state.opened:
            return open_cycle(t, draw, embed, nxt, router_cost)
        return []

    def evolve(state: State, event: AnyEnvelope) -> State:
        data = event.data
        if isinstance(data, CycleOpened):
            return replace(state, opened=state.opened | {data.cycle})
        if isinstance(data, CycleGraded):
            state = replace(state, closed=state.closed | {data.cycle})
        if isinstance(data, ControlPhaseCompleted):
            state = replace(state, controlled=state.controlled | {data.cycle})
        if isinstance(data, closing) and t.mode == "lockstep":  # it opened the next one now
            state = replace(state, opened=state.opened | {data.cycle + 1})
        return state

    return Policy(initial=State(), decide=decide, evolve=evolve, start=start)
