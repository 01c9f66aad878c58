"""Events of the control phase: gap map, envelopes, sleep training, canary, prototypes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import Payload
from events.serving import AdapterRef, ModelId
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
    radius: float = Field(default=0.0, ge=0, description="Distance from the centroid to the "
                          "farthest query of the cell in this window.")
    member_success: dict[ModelId, float] = Field(
        default_factory=dict, description="P̂_M(success | cell), smoothed, per entry member.")


MemberState = Literal["WORKING", "SLEEPING", "CANARY"]


class MemberView(_Part):
    """One member as the next cycle serves it: its state and the adapter it serves with."""

    state: MemberState = "WORKING"
    version: int = Field(default=0, ge=0, description="Promoted adapter version (0: base).")
    adapter: AdapterRef | None = Field(default=None, description="Adapter of that version.")
    cooling_until: int = Field(default=-1, description="Not chosen to sleep before this cycle.")
    good_at: list[Vector] = Field(
        default_factory=list, description="Target centroids its promoted version was trained "
        "for and proved on: prototypes the selector adds to its successes.")


class CanaryView(_Part):
    """A new version on trial: `share` of the queries within `radius` of a target centroid."""

    model_id: str
    envelope_id: str
    version: int = Field(ge=1)
    share: float = Field(ge=0, le=1)
    adapter: AdapterRef
    target_centroids: list[Vector]
    radius: float = Field(gt=0)


class ControlPhaseCompleted(Payload):
    """The control phase of a cycle is in the log; lockstep traffic may open the next cycle.

    It carries what the next cycle is served with (member states, adapters, canary shares),
    so the selector needs this one event, not the order of the control agents' topics, and
    the budget in use, so the 1/3 rule can be checked from the log."""

    TYPE = "ControlPhaseCompleted"
    cycle: int = Field(ge=0)
    members: dict[ModelId, MemberView] = Field(default_factory=dict)
    canaries: list[CanaryView] = Field(default_factory=list)
    budget_total: float = Field(default=0.0, ge=0, description="B_tot of the cycle (units).")
    train_used: float = Field(default=0.0, ge=0,
                              description="Train units spent by sleep episodes this cycle.")
    infer_reserved: float = Field(default=0.0, ge=0,
                                  description="Units reserved for inference this cycle.")


class GapIndexUpdated(Payload):
    """The gap cartographer's map of one cohort for a cycle."""

    TYPE = "GapIndexUpdated"
    cycle: int = Field(ge=0)
    tier: int = Field(ge=0, description="The cohort the map is for.")
    cells: list[GapCell]
    gap_mass: float = Field(ge=0, description="Σ G.")
    hardness: dict[ModelId, float] = Field(description="H_M per working member.")
    window: int = Field(default=0, ge=0, description="Graded queries in the window.")
    noise: float = Field(default=0.0, ge=0, le=1,
                         description="Share of window queries HDBSCAN left outside every cell.")
    ari: float | None = Field(default=None, description="Adjusted Rand index of the cells "
                              "against the benchmark's family x level labels (measured, never "
                              "used for a decision); None without labels.")


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
    cycle: int = Field(ge=0, description="The cycle whose control phase put it to sleep.")
    due_cycle: int = Field(ge=0, description="The control phase that waits for the outcome.")
    model_id: ModelId
    target_cells: list[GapCell] = Field(description="The cells it trains on (top by G).")
    step_budget: int = Field(ge=1, description="Training steps the slot buys, fixed now.")
    hardness: float = Field(ge=0)
    base_version: int = Field(default=0, ge=0, description="The version it trains from.")
    base_adapter: AdapterRef | None = Field(default=None,
                                            description="Adapter of that version, if any.")


class TrainingProgress(Payload):
    """A sleeper's training heartbeat (informational: no decision waits for it)."""

    TYPE = "TrainingProgress"
    envelope_id: str
    model_id: ModelId
    step: int = Field(ge=0)
    steps: int = Field(ge=1)
    loss: float


class GateStats(_Part):
    """The new version against its base on log queries held out from training, graded by
    reference (or by agreement with the teacher where a query has none)."""

    target_before: float = Field(ge=0, le=1)
    target_after: float = Field(ge=0, le=1)
    outside_before: float = Field(ge=0, le=1)
    outside_after: float = Field(ge=0, le=1)
    n_target: int = Field(ge=0)
    n_outside: int = Field(ge=0)


class TrainingCompleted(Payload):
    """New adapters are ready for the canary."""

    TYPE = "TrainingCompleted"
    envelope_id: str
    model_id: ModelId
    cycle: int = Field(default=0, ge=0, description="The episode's due cycle.")
    version: int = Field(ge=1, description="Adapter version of the member.")
    adapters: list[AdapterRef]
    steps: int = Field(ge=0)
    train_flops: float = Field(ge=0, description="≈ 6 · params touched · tokens.")
    examples: int = Field(default=0, ge=0, description="Target examples trained on.")
    curve: list[float] = Field(default_factory=list, description="Loss every 1/20 of the steps.")
    gate: GateStats | None = None


class TrainingFailed(Payload):
    """Training ended without adapters; the member returns as it was."""

    TYPE = "TrainingFailed"
    envelope_id: str
    model_id: ModelId
    cycle: int = Field(default=0, ge=0, description="The episode's due cycle.")
    reason: str


class _VersionStep(Payload):
    """Fields of every step of a member's new version through envelope, canary and verdict."""

    envelope_id: str = Field(description="The envelope the version was trained in.")
    model_id: ModelId = Field(description="The member.")
    version: int = Field(ge=1, description="The member's adapter version on trial.")
    cycle: int = Field(default=0, ge=0, description="The control phase this step belongs to.")


class CanaryStarted(_VersionStep):
    """The new version passed the offline gate and gets its first traffic share."""

    TYPE = "CanaryStarted"
    share: float = Field(ge=0, le=1)
    adapter: AdapterRef | None = None
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
    target_trials: int = Field(default=0, ge=0)
    target_successes: int = Field(default=0, ge=0)
    outside_trials: int = Field(default=0, ge=0)
    outside_successes: int = Field(default=0, ge=0)


class Promoted(_VersionStep):
    """The canary is stable: the new adapters become the member's version."""

    TYPE = "Promoted"
    adapters: list[AdapterRef]


class RolledBack(_VersionStep):
    """The canary regressed: the previous adapters are restored."""

    TYPE = "RolledBack"
    restored_version: int = Field(ge=0)
    reason: str
