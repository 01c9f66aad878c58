"""Events of the serving (wake) half: traffic, routing, answers, escalation, grading."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import Payload
from events.vectors import OptionalVector

QueryId = str
ModelId = str


class CycleOpened(Payload):
    """The traffic source opens a cycle and announces its size: the count barrier of §4."""

    TYPE = "CycleOpened"
    cycle: int = Field(ge=0, description="Cycle number, from 0.", examples=[3])
    queries: int = Field(ge=0, description="How many QueryReceived belong to it.", examples=[256])
    mode: Literal["lockstep", "free"] = Field(
        default="lockstep", description="Lockstep waits for the control phase; free never waits."
    )


class TaskRef(BaseModel):
    """Where a benchmark query comes from, so the grader can rebuild it and use its scorer.

    It names the task, never its answer: the routing agents read this event, and no label
    may reach them (the grader rebuilds the reference from the generator)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str = Field(examples=["reverse"])
    level: str = Field(examples=["easy"])
    seed: int = Field(description="Generator seed.")
    index: int = Field(ge=0, description="Item index in the seeded generator.")


class QueryReceived(Payload):
    """A production (or benchmark) query enters at the lowest tier."""

    TYPE = "QueryReceived"
    query_id: QueryId = Field(description="Unique query id.", examples=["c3-q0042"])
    cycle: int = Field(ge=0, description="Cycle the query belongs to.", examples=[3])
    text: str = Field(description="Query text, as every model and the router see it.",
                      examples=["reverse: roid"])
    embedding: OptionalVector = Field(
        default="", description="L2-normalised sentence embedding, float16 little-endian base64."
    )
    task: TaskRef | None = Field(default=None, description="Benchmark origin; None for users.")
    router_cost: float = Field(
        default=0.0, ge=0, description="Normalised cost of embedding this query for the router "
        "(always-top = 1.00): counted in the query's serving cost.")
    shadow: bool = Field(default=False, description="Also answered by the upper tier and peers.")


class _ByMember(Payload):
    """Fields of every event about one member's work on one query (not an event itself)."""

    query_id: QueryId = Field(description="The query.", examples=["c0003-q00042"])
    cycle: int = Field(ge=0, description="Its cycle.")
    model_id: ModelId = Field(description="The member.", examples=["l0-chain-rev"])
    tier: int = Field(ge=0, description="The member's tier.", examples=[0])


class _Verdict(_ByMember):
    """The numbers behind a meta-selector decision (Algorithm 1)."""

    p_success: float = Field(ge=0, le=1, description="Calibrated confidence.")
    evi: float = Field(description="Expected value of escalating.")
    theta: float = Field(description="θ_crit in force.")


class AdapterRef(BaseModel):
    """A LoRA adapter by content address: events carry path and hash, never weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cell_id: str = Field(description="The cells it was trained for ('*': one adapter for all).")
    path: str = Field(max_length=4096, description="Where it lies in the adapter store.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class QueryRouted(_ByMember):
    """The selector's choice, with the numbers that made it (eq. 4)."""

    TYPE = "QueryRouted"
    text: str = Field(description="The query text, so the worker needs nothing else.")
    distances: dict[ModelId, float] = Field(default_factory=dict,
                                            description="d_beh(x, M) per candidate.")
    costs: dict[ModelId, float] = Field(default_factory=dict,
                                        description="Normalised cost per candidate.")
    explored: bool = Field(default=False, description="Chosen by ε-exploration.")
    canary: bool = Field(default=False, description="Sent to a canary version.")
    shadow: bool = Field(default=False, description="A shadow-sample answer, not served.")
    adapter: AdapterRef | None = Field(
        default=None, description="The adapter to answer with (the member's promoted version or "
        "its canary); None: the base weights.")


class ResponseGenerated(_ByMember):
    """A model worker's answer with its confidence and cost."""

    TYPE = "ResponseGenerated"
    answer: str = Field(description="The generated answer text.", examples=["dior"])
    confidence: float = Field(description="Raw confidence from token probabilities.")
    prompt_tokens: int = Field(ge=0)
    answer_tokens: int = Field(ge=0)
    cost_flops: float = Field(ge=0, description="≈ 2 · params · tokens.")
    cost_norm: float = Field(ge=0, description="Cost normalised so always-top = 1.00.")
    adapter: str | None = Field(default=None, description="sha256 of the adapter used, if any.")
    shadow: bool = Field(default=False, description="A shadow-sample answer, not served.")


class Accepted(_Verdict):
    """The meta-selector keeps an answer (Algorithm 1)."""

    TYPE = "Accepted"


class Escalated(_Verdict):
    """The meta-selector sends the query one tier up; model_id/tier are the member left."""

    TYPE = "Escalated"
    to_tier: int = Field(ge=1)
    to_model: ModelId = Field(description="The member of the next tier that answers.")
    text: str = Field(description="The query text, for the next tier's worker.")


class ResponseGraded(_ByMember):
    """Quality Q of one answer (final or shadow)."""

    TYPE = "ResponseGraded"
    quality: float = Field(ge=0, le=1, description="Q(x, y).")
    success: bool = Field(description="Q ≥ τ.")
    method: Literal["reference", "agreement"]
    final: bool = Field(
        description="True: the served answer's grade (one per query). False: the grade of one "
        "answer (one per ResponseGenerated), served or not."
    )
    shadow: bool = Field(default=False)
    confidence: float = Field(description="The answer's raw confidence (for calibration).")
    cost_norm: float = Field(ge=0, description="The answer's normalised cost.")
    adapter: str | None = Field(default=None, description="sha256 of the adapter that "
                                "answered (the canary judge tells versions apart by it).")


class CycleGraded(Payload):
    """The grader has graded every answer of a cycle, shadow answers included.

    It closes the cycle's evidence: a consumer counts `grades` ResponseGraded of the cycle
    (they may arrive after this event, from other partitions) before it decides anything
    about the next cycle.
    """

    TYPE = "CycleGraded"
    cycle: int = Field(ge=0, le=10**9, description="The cycle closed.", examples=[3])
    queries: int = Field(ge=0, description="Queries of the cycle, all settled.", examples=[64])
    grades: int = Field(ge=0, description="ResponseGraded events of the cycle (final and "
                        "per answer).", examples=[130])


class RunConfigured(Payload):
    """The run's whole configuration, emitted once by the traffic source when a run starts,
    so the log alone rebuilds every agent (the audit reads it instead of being told)."""

    TYPE = "RunConfigured"
    config: str = Field(description="The run configuration as JSON (agents.config).",
                        examples=['{"traffic": {"seed": 0}}'], max_length=16_384)
