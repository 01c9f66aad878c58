"""The system as data: which agent produces which events and consumes whose topics.

Topic creation, the AsyncAPI/markdown docs, the projector's subscription and the test
harness all derive from `SYSTEM`. A built-in agent is one `AgentSpec` here; an agent from
another package joins by declaring its spec under the entry-point group `sleepwake.agents`
(events.plugins, docs/extending.md), with no edit to this module.
"""

from __future__ import annotations

from events import control, proof, serving
from events.envelope import Payload
from events.plugins import plugin_specs
from events.spec import TOPIC_PREFIX, TOPIC_VERSION, AgentSpec, dead_letter_of, topic_of

__all__ = ["AGENTS", "BUILTIN", "SYSTEM", "TOPIC_PREFIX", "TOPIC_VERSION", "AgentSpec",
           "all_topics", "dead_letter_of", "event_topics", "producer_of", "topic_of"]

BUILTIN: tuple[AgentSpec, ...] = (
    AgentSpec(
        "gateway", (serving.RunConfigured, serving.CycleOpened, serving.QueryReceived),
        ("gateway", "grader", "envelope_broker"),
        "Traffic source: opens cycles (announcing their size) and publishes queries.",
    ),
    AgentSpec(
        "selector", (serving.QueryRouted,),
        ("gateway", "grader", "envelope_broker"),
        "Routes each query to the member minimising w_d·d_beh + w_c·C (eq. 4).",
    ),
    AgentSpec(
        "worker", (serving.ResponseGenerated,),
        ("selector", "meta_selector"),
        "Data plane: answers with the adapter each route names (verified by sha256).",
        scaling="keyed",
    ),
    AgentSpec(
        "meta_selector", (serving.Accepted, serving.Escalated),
        ("gateway", "worker", "grader", "cartographer"),
        "Algorithm 1: escalates iff calibrated confidence < θ_crit and EVI > 0.",
    ),
    AgentSpec(
        "grader", (serving.ResponseGraded, serving.CycleGraded),
        ("gateway", "worker", "meta_selector"),
        "Scores final and shadow answers: by reference, else by agreement with the upper tier.",
    ),
    AgentSpec(
        "cartographer", (control.GapIndexUpdated,),
        ("gateway", "grader"),
        "Clusters the graded window into cells (HDBSCAN) and measures gaps per cell.",
    ),
    AgentSpec(
        "envelope_broker",
        (control.EnvelopeOpened, control.EnvelopeClosed, control.SleepStarted,
         control.ControlPhaseCompleted),
        ("cartographer", "trainer", "canary_judge"),
        "Algorithm 3: opens training envelopes inside the 1/3 budget and picks the sleeper.",
    ),
    AgentSpec(
        "trainer",
        (control.TrainingProgress, control.TrainingCompleted, control.TrainingFailed),
        ("envelope_broker", "gateway", "trainer", "meta_selector"),
        "Algorithm 2: LoRA knowledge distillation from the upper tier on the gap cells.",
    ),
    AgentSpec(
        "canary_judge",
        (control.CanaryStarted, control.TrafficShifted, control.Promoted, control.RolledBack),
        ("trainer", "grader", "gateway", "envelope_broker"),
        "Algorithm 4: offline gate, then doubling traffic share; promote or roll back.",
    ),
    AgentSpec("pinger", (proof.Ping,), ("ponger",), "Proof flow: pings until the rally's limit.",
              scaling="keyed"),
    AgentSpec("ponger", (proof.Pong,), ("pinger",), "Proof flow: answers every ping.",
              scaling="keyed"),
)

#: The built-in agents and every installed plug-in's (entry-point group `sleepwake.agents`).
SYSTEM: tuple[AgentSpec, ...] = (*BUILTIN, *plugin_specs(BUILTIN))

AGENTS: dict[str, AgentSpec] = {spec.name: spec for spec in SYSTEM}


def all_topics() -> list[str]:
    """Every event topic and its dead-letter topic."""
    return [t for spec in SYSTEM for t in (spec.topic, spec.dead_letter_topic)]


def event_topics() -> list[str]:
    return [spec.topic for spec in SYSTEM]


def producer_of(payload: type[Payload]) -> AgentSpec:
    """The one agent allowed to emit this event type."""
    owner = _OWNERS.get(payload)
    if owner is not None:
        return owner
    owners = [spec for spec in SYSTEM if payload in spec.produces]
    if len(owners) != 1:
        raise LookupError(f"{payload.TYPE} must have exactly one producer, has {len(owners)}")
    return owners[0]


def _check() -> None:
    for spec in SYSTEM:
        for name in spec.consumes:
            if name not in AGENTS:
                raise LookupError(f"{spec.name} consumes unknown agent {name!r}")
        for payload in spec.produces:
            producer_of(payload)


_OWNERS: dict[type[Payload], AgentSpec] = {}
_check()
_OWNERS.update({p: spec for spec in SYSTEM for p in spec.produces})
