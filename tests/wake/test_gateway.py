"""Gateway policy: deterministic cycles, the lockstep count barrier, free-running traffic."""

from __future__ import annotations

import numpy as np

from agents.gateway.policy import Traffic, make_policy
from events.serving import CycleOpened, QueryReceived
from modelcore.world import TaskWorld
from runtime.policy import Policy, run
from tests.wake.builders import closed, env, graded


def fake_embed(texts: list[str]) -> np.ndarray:
    rng = np.random.default_rng(len(texts))
    v = rng.normal(size=(len(texts), 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def gateway(mode: str = "lockstep", n: int = 4, cycles: int = 3) -> Policy:
    return make_policy(Traffic(seed=1, cycles=cycles, queries_per_cycle=n, shadow=0.5,
                               mode=mode),  # type: ignore[arg-type]
                       TaskWorld(seed=1).queries, fake_embed)


def test_lockstep_opens_a_cycle_only_when_the_grader_closes_the_previous() -> None:
    policy = gateway()
    first = policy.start(policy.initial)
    assert isinstance(first[0].data, CycleOpened) and first[0].data.queries == 4
    queries = [e.data for e in first[1:]]
    assert all(isinstance(q, QueryReceived) and q.task is not None for q in queries)
    opened = env(first[0].data)
    finals = [graded(q.query_id, "a", True, final=True) for q in queries]  # type: ignore[union-attr]
    _, decided = run(policy, [opened, *finals, closed(0, grades=4, queries=4)])
    assert all(d == [] for d in decided[:-1])  # final grades alone open nothing
    assert isinstance(decided[-1][0].data, CycleOpened) and decided[-1][0].data.cycle == 1
    assert all(q.task is None or "answer" not in q.task.model_dump()
               for q in queries)  # type: ignore[union-attr]
    assert policy.start(run(policy, [opened])[0]) == []  # restart: nothing opened twice


def test_queries_are_a_function_of_seed_and_cycle() -> None:
    a = [e.data for e in gateway().start(gateway().initial)]
    b = [e.data for e in gateway().start(gateway().initial)]
    assert a == b
    shadows = [q.shadow for q in a if isinstance(q, QueryReceived)]
    assert len(shadows) == 4


def test_free_running_opens_every_cycle_at_once() -> None:
    emits = gateway("free").start(gateway("free").initial)
    assert [e.data.cycle for e in emits if isinstance(e.data, CycleOpened)] == [0, 1, 2]
