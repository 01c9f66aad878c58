"""Sleeper trainer, its pure half: which episode to train, on what, once the data is in.

An episode (`SleepStarted`) trains on the log's own queries up to the cycle that started it:
those within a target cell's radius are the targets (the teacher answers them inside the
job), the rest the anti-forgetting replay; a hash of the query id holds a share of both out of
training, and the offline gate measures the new version on them. The episode is ready when
every query of those cycles is in (each cycle's size comes from `CycleOpened`: a count
barrier, so the job is a function of the log, not of arrival order). An episode whose outcome
is already on the trainer's own topic is done (after a restart it is not run again).

Training itself is heavy and runs outside any message handler (`agents.trainer.episode`, in
its own process); this module only decides what it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from events.control import SleepStarted, TrainingCompleted, TrainingFailed
from events.serving import AdapterRef, CycleOpened, Escalated, QueryReceived
from events.vectors import decode_vector
from runtime.policy import AnyEnvelope, Emit, Policy


@dataclass(frozen=True)
class TrainerConfig:
    history_cycles: int = 12  # cycles of the log an episode learns from
    eval_share: float = 0.3  # queries held out of training for the offline gate
    max_eval: int = 60  # held-out queries per side (target, outside) the gate scores
    #: What is distilled: "gap" (the target cells), "uniform" (every log query) or
    #: "escalated" (what the meta-selector escalated): baselines of `sleepwake compare`.
    examples: str = "gap"


class LogQuery(NamedTuple):
    query_id: str
    cycle: int
    text: str
    embedding: str
    task: tuple[str, str, int, int] | None  # family, level, seed, index: the gate's reference


class Target(NamedTuple):
    text: str
    gap: float  # G of its cell
    evi: float  # the cell's expected gain of the upper tier (solvable_up - cover)


@dataclass(frozen=True)
class Job:
    """One episode as the trainer process runs it (a pure function of the log)."""

    envelope_id: str
    model_id: str
    version: int
    due_cycle: int
    step_budget: int
    base_adapter: AdapterRef | None
    targets: tuple[Target, ...]
    replay: tuple[str, ...]
    eval_target: tuple[LogQuery, ...]
    eval_outside: tuple[LogQuery, ...]

    def key(self) -> str:
        """Content hash of the job: its checkpoint is only resumed by the same job."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class State:
    queries: MappingProxyType[int, tuple[LogQuery, ...]] = field(default_factory=_empty)
    sizes: MappingProxyType[int, int] = field(default_factory=_empty)
    episodes: MappingProxyType[str, SleepStarted] = field(default_factory=_empty)
    done: frozenset[str] = frozenset()
    latest: int = 0  # the newest episode's start: later ones start no earlier
    escalated: MappingProxyType[int, frozenset[str]] = field(default_factory=_empty)  # by cycle


def held_out(query_id: str, share: float) -> bool:
    digest = hashlib.sha256(f"gate|{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _cycles(cfg: TrainerConfig, sleep: SleepStarted) -> range:
    return range(max(0, sleep.cycle - cfg.history_cycles + 1), sleep.cycle + 1)


def is_ready(cfg: TrainerConfig, state: State, sleep: SleepStarted) -> bool:
    return all(c in state.sizes and len(state.queries.get(c, ())) >= state.sizes[c]
               for c in _cycles(cfg, sleep))


def job_of(cfg: TrainerConfig, state: State, sleep: SleepStarted) -> Job:
    rows = sorted((q for c in _cycles(cfg, sleep) for q in state.queries.get(c, ())),
                  key=lambda q: (q.cycle, q.query_id))
    cents = np.vstack([decode_vector(c.centroid) for c in sleep.target_cells])
    radii = np.array([max(c.radius, 1e-3) for c in sleep.target_cells])
    targets: list[Target] = []
    replay: list[str] = []
    eval_target: list[LogQuery] = []
    eval_outside: list[LogQuery] = []
    for q in rows:
        if not q.embedding:
            continue
        d = np.linalg.norm(cents - decode_vector(q.embedding), axis=1)
        i = int(np.argmin(d))
        inside = bool(d[i] <= radii[i])
        if held_out(q.query_id, cfg.eval_share):
            (eval_target if inside else eval_outside).append(q)  # one gate for every arm
        elif cfg.examples == "uniform" or (
                cfg.examples == "escalated"
                and q.query_id in state.escalated.get(q.cycle, frozenset())):
            targets.append(Target(q.text, 1.0, 0.0))  # equal weights: no gap to weigh by
        elif inside and cfg.examples == "gap":
            cell = sleep.target_cells[i]
            targets.append(Target(q.text, cell.gap, cell.solvable_up - cell.cover))
        else:
            replay.append(q.text)
    return Job(sleep.envelope_id, sleep.model_id, sleep.base_version + 1, sleep.due_cycle,
               sleep.step_budget, sleep.base_adapter, tuple(targets), tuple(replay),
               tuple(eval_target[: cfg.max_eval]), tuple(eval_outside[: cfg.max_eval]))


def pending_jobs(cfg: TrainerConfig, state: State) -> list[Job]:
    """Episodes whose data is in and whose outcome is not in the log yet, oldest first."""
    return [job_of(cfg, state, s) for k, s in sorted(state.episodes.items())
            if k not in state.done and is_ready(cfg, state, s)]


def _forget(cfg: TrainerConfig, state: State) -> State:
    """Keep the cycles an unfinished episode (or the next one) may still learn from."""
    open_starts = [s.cycle for k, s in state.episodes.items() if k not in state.done]
    keep_from = min([*open_starts, state.latest]) - cfg.history_cycles + 1
    queries = {c: v for c, v in state.queries.items() if c >= keep_from}
    escalated = {c: v for c, v in state.escalated.items() if c >= keep_from}
    sizes = {c: v for c, v in state.sizes.items() if c >= keep_from}
    episodes = {k: v for k, v in state.episodes.items() if k not in state.done}
    return replace(state, queries=MappingProxyType(queries), sizes=MappingProxyType(sizes),
                   episodes=MappingProxyType(episodes), escalated=MappingProxyType(escalated))


def evolve(cfg: TrainerConfig, state: State, event: AnyEnvelope) -> State:
    data = event.data
    if isinstance(data, QueryReceived):
        task = data.task
        row = LogQuery(data.query_id, data.cycle, data.text, data.embedding,
                       (task.family, task.level, task.seed, task.index) if task else None)
        have = state.queries.get(data.cycle, ())
        if any(q.query_id == data.query_id for q in have):
            return state
        return replace(state, queries=MappingProxyType({**state.queries,
                                                        data.cycle: (*have, row)}))
    if isinstance(data, Escalated) and data.tier == 0:
        have_ids = state.escalated.get(data.cycle, frozenset())
        return replace(state, escalated=MappingProxyType(
            {**state.escalated, data.cycle: have_ids | {data.query_id}}))
    if isinstance(data, CycleOpened):
        return replace(state, sizes=MappingProxyType({**state.sizes, data.cycle: data.queries}))
    if isinstance(data, SleepStarted) and data.envelope_id not in state.done:
        return _forget(cfg, replace(state, latest=max(state.latest, data.cycle),
                                    episodes=MappingProxyType({**state.episodes,
                                                               data.envelope_id: data})))
    if isinstance(data, TrainingCompleted | TrainingFailed):
        return _forget(cfg, replace(state, done=state.done | {data.envelope_id}))
    return state


def _nothing(state: State, event: AnyEnvelope) -> list[Emit]:
    return []  # outcomes are published by the job runner when an episode ends


def make_policy(cfg: TrainerConfig = TrainerConfig()) -> Policy[State]:
    return Policy(State(), _nothing, lambda s, e: evolve(cfg, s, e))
