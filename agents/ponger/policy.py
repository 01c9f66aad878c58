"""Ponger: answers every ping once (state: the pings answered, by rally and number)."""

from __future__ import annotations

from events.proof import Ping, Pong
from runtime.policy import AnyEnvelope, Emit, Policy

State = frozenset[tuple[str, int]]


def decide(state: State, event: AnyEnvelope) -> list[Emit]:
    ping = event.data
    if not isinstance(ping, Ping) or (ping.rally, ping.n) in state:
        return []
    return [Emit(Pong(rally=ping.rally, n=ping.n, limit=ping.limit), subject=ping.rally)]


def evolve(state: State, event: AnyEnvelope) -> State:
    ping = event.data
    return state | {(ping.rally, ping.n)} if isinstance(ping, Ping) else state


POLICY: Policy[State] = Policy(initial=frozenset(), decide=decide, evolve=evolve)
