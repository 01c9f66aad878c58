"""Model worker (data plane): one member answers what is routed or escalated to it.

Not a pure policy: it runs the model. It is deterministic (greedy decoding) and keeps no
state: each route names the adapter to answer with (the member's promoted version or its
canary, chosen by the selector from the control phase), which is loaded from the store once
and refused if its sha256 does not match.
"""

from __future__ import annotations

from agents.cohort import Member
from events.serving import Escalated, QueryRouted, ResponseGenerated
from modelcore.backend import AdapterRef as Stored
from modelcore.backend import ModelBackend
from runtime.metrics import model_call
from runtime.policy import AnyEnvelope, Emit, Policy


def _task(member: Member, data: object) -> tuple[QueryRouted | Escalated, bool] | None:
    """The work an event asks of this member, with its shadow flag, or None."""
    if isinstance(data, QueryRouted) and data.model_id == member.model_id:
        return data, data.shadow
    if isinstance(data, Escalated) and data.to_model == member.model_id:
        return data, False
    return None


def make_policy(member: Member, backend: ModelBackend) -> Policy[None]:
    def decide(state: None, event: AnyEnvelope) -> list[Emit]:
        """One query at a time: batched generation pads, and padding moves confidences in
        the 7th digit, which would make a run depend on how its records were batched."""
        work = _task(member, event.data)
        if work is None:
            return []
        data, shadow = work
        adapter = None
        if isinstance(data, QueryRouted) and data.adapter is not None:
            adapter = backend.load_adapter(Stored(data.adapter.path, data.adapter.sha256))
        (answer,) = backend.generate([data.text], adapter=adapter)
        model_call(member.model_id, answer.prompt_tokens, answer.answer_tokens)
        return [Emit(ResponseGenerated(
            query_id=data.query_id, cycle=data.cycle, model_id=member.model_id,
            tier=member.tier, answer=answer.text, confidence=answer.confidence,
            prompt_tokens=answer.prompt_tokens, answer_tokens=answer.answer_tokens,
            cost_flops=answer.flops, cost_norm=answer.cost, adapter=answer.adapter,
            shadow=shadow,
        ), subject=data.query_id, correlationid=f"cycle-{data.cycle}",
            key=f"answer|{data.query_id}|{member.model_id}|{shadow}")]

    def evolve(state: None, event: AnyEnvelope) -> None:
        return None

    return Policy(initial=None, decide=decide, evolve=evolve, blocking=True)
