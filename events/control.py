"""Events of the control phase: gap map, envelopes, sleep training, canary, prototypes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import Payload
from events.serving import ModelId
from events.vectors import Vector


class _Part(BaseModel):
    """A frozen value nested inside a payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class GapCell(_Part):
    """One cell of the gap map (docs/design.md, 'The gap index')."""

    cell_id: str = Field(examples=["cell-7"])
    centroid: Vector = Field(description="Centroid embedding, float16 base64.")
    size: int = Field(ge=0)
    demand: float = Field(ge=0, le=1, description="D_Q: share of window queries.")
    cover: float = Field(ge=0, le=1, description="Smoothed cohort success rate.")
    solvable_up: float = Field(ge=0, le=1, description="Smoothed upper-tier success rate.")
    gap: float = Field(ge=0, description="G = D_Q · (1 - cover) · solvable_up.")


class AdapterRef(_Part):
    """A LoRA adapter by content address: events carry path and hash, never weights."""

    cell_id: str
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ControlPhaseCompleted(Payload):
    """The control phase of a cycle is in the log; lockstep traffic may open the next cycle."""

    TYPE = "ControlPhaseCompleted"
    cycle: int = Field(ge=0)


class GapIndexUpdated(Payload):
    """The gap cartographer's map of one cohort for a cycle."""

    TYPE = "GapIndexUpdated"
    cycle: int = Field(ge=0)
    tier: int = Field(ge=0, description="The cohort the map is for.")
    cells: list[GapCell]
    gap_mass: float = Field(ge=0, description="Σ G.")
    hardness: dict[ModelId, float] = Field(description="H_M per working member.")


class PrototypesUpdated(Payload):
    """A member's behavioural prototypes P(M, k), rebuilt from graded successes."""

    TYPE = "PrototypesUpdated"
    cycle: int = Field(ge=0)
    model_id: ModelId
    prototypes: list[Vector] = Field(description="Up to K EMA centroids, float16 base64.")


class EnvelopeOpened(Payload):
    """The envelope broker reserves train and inference budget for one class (Algorithm 3)."""

    TYPE = "EnvelopeOpened"
    envelope_id: str
    cycle: int = Field(ge=0)
    tier: int = Field(ge=0)
    task_class: str
    train_reserved: float = Field(ge=0)
    infer_reserved: float = Field(ge=0)
    train_pool_left: float = Field(ge=0)
    infer_pool_left: float = Field(ge=0)


class EnvelopeClosed(Payload):
    """An envelope ends and returns its reservations to the pools."""

    TYPE = "EnvelopeClosed"
    envelope_id: str
    cycle: int = Field(ge=0)
    reason: Literal["promoted", "rolled_back", "failed", "expired"]


class SleepStarted(Payload):
    """A member leaves service to train on its gap cells (Algorithm 2)."""

    TYPE = "SleepStarted"
    envelope_id: str
    cycle: int = Field(ge=0)
    model_id: ModelId
    target_cells: list[str]
    step_budget: int = Field(ge=1)
    hardness: float = Field(ge=0)


class TrainingProgress(Payload):
    """A sleeper's training heartbeat."""

    TYPE = "TrainingProgress"
    envelope_id: str
    model_id: ModelId
    step: int = Field(ge=0)
    steps: int = Field(ge=1)
    loss: float


class TrainingCompleted(Payload):
    """New adapters are ready for the canary."""

    TYPE = "TrainingCompleted"
    envelope_id: str
    model_id: ModelId
    version: int = Field(ge=1, description="Adapter version of the member.")
    adapters: list[AdapterRef]
    steps: int = Field(ge=0)
    train_flops: float = Field(ge=0, description="≈ 6 · params touched · tokens.")


class TrainingFailed(Payload):
    """Training ended without adapters; the member returns as it was."""

    TYPE = "TrainingFailed"
    envelope_id: str
    model_id: ModelId
    reason: str


class _VersionStep(Payload):
    """Fields of every step of a member's new version through envelope, canary and verdict."""

    envelope_id: str = Field(description="The envelope the version was trained in.")
    model_id: ModelId = Field(description="The member.")
    version: int = Field(ge=1, description="The member's adapter version on trial.")


class CanaryStarted(_VersionStep):
    """The new version passed the offline gate and gets its first traffic share."""

    TYPE = "CanaryStarted"
    share: float = Field(ge=0, le=1)
    target_centroids: list[Vector] = Field(
        default_factory=list, description="Centroids of the target cells, float16 base64.")
    radius: float = Field(default=0.8, gt=0, description="A query this close to a target "
                          "centroid belongs to the target cells.")
    gate_target_delta: float = Field(description="Offline gate: accuracy change on target cells.")
    gate_outside_delta: float = Field(description="Offline gate: accuracy change outside.")


class TrafficShifted(_VersionStep):
    """One canary evaluation slot: the new share and the comparison behind it."""

    TYPE = "TrafficShifted"
    slot: int = Field(ge=0)
    share: float = Field(ge=0, le=1)
    target_delta: float
    outside_delta: float


class Promoted(_VersionStep):
    """The canary is stable: the new adapters become the member's version."""

    TYPE = "Promoted"
    adapters: list[AdapterRef]


class RolledBack(_VersionStep):
    """The canary regressed: the previous adapters are restored."""

    TYPE = "RolledBack"
    restored_version: int = Field(ge=0)
    reason: str
