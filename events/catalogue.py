"""Every event type of the system, by wire name: the one place decoding looks types up."""

from __future__ import annotations

from events import control, proof, serving
from events.envelope import Payload

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
)

CATALOGUE: dict[str, type[Payload]] = {p.TYPE: p for p in PAYLOADS}

assert len(CATALOGUE) == len(PAYLOADS), "two payload classes share a TYPE name"
