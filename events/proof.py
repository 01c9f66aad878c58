"""Events of the proof flow: two agents that talk only through the log (ping/pong)."""

from __future__ import annotations

from pydantic import Field

from events.envelope import Payload


class Ping(Payload):
    """Asks the ponger to answer; v2 added `rally` (v1 events are upcast, see events.upcasting)."""

    TYPE = "Ping"
    VERSION = 2
    rally: str = Field(description="Which exchange this ping belongs to.", examples=["r-1"])
    n: int = Field(ge=0, description="Ping number within the rally.", examples=[0])
    limit: int = Field(ge=1, description="The rally stops after this many pings.", examples=[3])


class Pong(Payload):
    """The ponger's answer to ping n."""

    TYPE = "Pong"
    rally: str = Field(examples=["r-1"])
    n: int = Field(ge=0, examples=[0])
    limit: int = Field(ge=1, examples=[3])
