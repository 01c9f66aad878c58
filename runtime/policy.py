"""What every agent's domain is: a pure decide/evolve pair over frozen state
(docs/design.md, 'Agents as pure policies').

A policy never reads the clock, an unseeded random source, or anything but the events it is
given, so re-running it over a log prefix reproduces its decisions (the audit relies on it).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from events.envelope import Envelope, Payload, derived_id

S = TypeVar("S")

AnyEnvelope = Envelope[Any]


@dataclass(frozen=True)
class Emit:
    """An event a policy decides to emit; the shell wraps it in an envelope."""

    data: Payload
    subject: str
    correlationid: str | None = None
    #: What the event *is*, when several inputs could trigger it (a join): its id is then
    #: derived from this key instead of the triggering event, whichever input came last.
    key: str | None = None

    def event_id(self, agent: str, cause: uuid.UUID, index: int) -> uuid.UUID:
        return derived_id(agent, self.key) if self.key else derived_id(agent, cause, index)


def _nothing(state: Any) -> Sequence[Emit]:
    return ()


@dataclass(frozen=True)
class Policy(Generic[S]):
    """An agent's domain: initial state, a reaction to each event, and a fold.

    `start` is what an agent emits on its own once its state is rebuilt (a traffic source
    opening its first cycle); it must return nothing for a state that already did so.
    """

    initial: S
    decide: Callable[[S, AnyEnvelope], Sequence[Emit]]
    evolve: Callable[[S, AnyEnvelope], S]
    start: Callable[[S], Sequence[Emit]] = _nothing
    #: decide does heavy work (model inference): the shell yields to the event loop after
    #: each decision, so heartbeats and the other agents run between them. It decides on the
    #: loop thread all the same: inference in threads beside the loop ran 5 to 10 times slower
    #: per call on two cores (a generation loop releases the GIL at every tensor op and queues
    #: to take it back); processes, not threads, scale inference out.
    blocking: bool = False
    #: Decision and fold in one pass, for policies whose decision falls out of the fold
    #: (a join that completes); `decide` and `evolve` are then its two halves.
    step: Callable[[S, AnyEnvelope], tuple[Sequence[Emit], S]] | None = None

    @classmethod
    def stepped(
        cls, initial: S, step: Callable[[S, AnyEnvelope], tuple[Sequence[Emit], S]],
        **kwargs: Any,
    ) -> Policy[S]:
        return cls(initial, _decide_by_step(step), _evolve_by_step(step), step=step, **kwargs)

    def react(self, state: S, event: AnyEnvelope) -> tuple[Sequence[Emit], S]:
        """What the policy emits on `event`, and the state after it."""
        if self.step is not None:
            return self.step(state, event)
        return self.decide(state, event), self.evolve(state, event)


def _decide_by_step(step: Callable[[S, AnyEnvelope], tuple[Sequence[Emit], S]]
                    ) -> Callable[[S, AnyEnvelope], Sequence[Emit]]:
    return lambda state, event: step(state, event)[0]


def _evolve_by_step(step: Callable[[S, AnyEnvelope], tuple[Sequence[Emit], S]]
                    ) -> Callable[[S, AnyEnvelope], S]:
    return lambda state, event: step(state, event)[1]


class Deferred(Generic[S]):
    """A policy that takes seconds to build (its agent loads a model, or imports a heavy
    library): built once, on first use, from any thread. The stack builds it off the event
    loop while the agent's consumer group joins, instead of before it."""

    def __init__(self, build: Callable[[], Policy[S]]) -> None:
        self._build = build
        self._policy: Policy[S] | None = None
        self._lock = threading.Lock()

    def get(self) -> Policy[S]:
        with self._lock:
            if self._policy is None:
                self._policy = self._build()
            return self._policy


def built(policy: Policy[S] | Deferred[S]) -> Policy[S]:
    """The policy itself, building a deferred one (blocking) if it is not built yet."""
    return policy.get() if isinstance(policy, Deferred) else policy


def run(policy: Policy[S], events: Sequence[AnyEnvelope]) -> tuple[S, list[list[Emit]]]:
    """Fold a policy over events, returning the final state and what it decided at each one."""
    state = policy.initial
    decided: list[list[Emit]] = []
    for event in events:
        decided.append(list(policy.decide(state, event)))
        state = policy.evolve(state, event)
    return state, decided
