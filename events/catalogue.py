"""Every event type of the system, by wire name: the one place decoding looks types up.

Built-in types are listed here; a plug-in agent's types come with its spec (events.plugins).
"""

from __future__ import annotations

from events import control, proof, serving
from events.envelope import Payload
from events.topology import BUILTIN, SYSTEM

PAYLOADS: tuple[type[Payload], ...] = (
    serving.RunConfigured,
    serving.CycleOpened,
    serving.QueryReceived,
    serving.QueryRouted,
    serving.ResponseGenerated,
    serving.Accepted,
    serving.Escalated,
    serving.ResponseGraded,
    serving.CycleGraded,
    control.ControlPhaseCompleted,
    control.GapIndexUpdated,
    control.EnvelopeOpened,
    control.EnvelopeClosed,
    control.SleepStarted,
    control.TrainingProgress,
    control.TrainingCompleted,
    control.TrainingFailed,
    control.CanaryStarted,
    control.TrafficShifted,
    control.Promoted,
    control.RolledBack,
    proof.Ping,
    proof.Pong,
    *(p for spec in SYSTEM[len(BUILTIN):] for p in spec.produces),
)

CATALOGUE: dict[str, type[Payload]] = {p.TYPE: p for p in PAYLOADS}

assert len(CATALOGUE) == len(PAYLOADS), "two payload classes share a TYPE name"
