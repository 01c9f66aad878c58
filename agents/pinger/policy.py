"""Pinger: on each pong, ping again until the rally reaches its limit.

State: the highest pong seen per rally, so a stale or repeated pong never pings twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from events.proof import Ping, Pong
from runtime.policy import AnyEnvelope, Emit, Policy

State = Mapping[str, int]


def decide(state: State, event: AnyEnvelope) -> list[Emit]:
    pong = event.data
    if not isinstance(pong, Pong) or state.get(pong.rally, -1) >= pong.n:
        return []
    if pong.n + 1 >= pong.limit:
        return []
    return [Emit(Ping(rally=pong.rally, n=pong.n + 1, limit=pong.limit), subject=pong.rally)]


def evolve(state: State, event: AnyEnvelope) -> State:
    pong = event.data
    if not isinstance(pong, Pong) or state.get(pong.rally, -1) >= pong.n:
        return state
    return MappingProxyType({**state, pong.rally: pong.n})


POLICY: Policy[State] = Policy(initial=MappingProxyType({}), decide=decide, evolve=evolve)
