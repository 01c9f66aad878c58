"""The proof-flow policies are pure: same events in, same decisions out."""

from __future__ import annotations

from agents.pinger.policy import POLICY as PINGER
from agents.ponger.policy import POLICY as PONGER
from events.proof import Ping, Pong
from runtime.policy import run
from tests.spine.helpers import ping, pong


def test_ponger_answers_each_ping_once() -> None:
    first = ping("r", 0, 3)
    again = ping("r", 0, 3)  # same ping number under another id: a duplicate effect
    _, decided = run(PONGER, [first, again])
    assert [e.data for e in decided[0]] == [Pong(rally="r", n=0, limit=3)]
    assert decided[1] == []


def test_pinger_stops_at_the_limit_and_ignores_stale_pongs() -> None:
    state, decided = run(PINGER, [pong("r", 0, 2), pong("r", 1, 2), pong("r", 0, 2)])
    assert [e.data for e in decided[0]] == [Ping(rally="r", n=1, limit=2)]
    assert decided[1] == [] and decided[2] == []
    assert state["r"] == 1
