"""Grader primitives: quality by the task's own scorer, or by agreement with the upper tier.

Quality Q ∈ [0, 1]; success means Q ≥ τ (τ = 1 for exact tasks; docs/design.md, 'Quality and
success'). Agreement is the fallback for queries without a reference: the shadow-sampled
upper-tier answer stands in for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelcore.tasks import Task, score

TAU = 1.0


@dataclass(frozen=True)
class Grade:
    quality: float
    success: bool
    method: Literal["reference", "agreement"]


def grade_reference(task: Task, answer: str | None, tau: float = TAU) -> Grade:
    q = score(task, answer)
    return Grade(q, q >= tau, "reference")


def normalise_answer(text: str) -> str:
    """Canonical form for comparing two models' answers: trimmed, one space, integers parsed."""
    t = " ".join(text.strip().split())
    try:
        return str(int(t))
    except ValueError:
        return t


def grade_agreement(answer: str | None, upper_answer: str, tau: float = TAU) -> Grade:
    agree = answer is not None and normalise_answer(answer) == normalise_answer(upper_answer)
    q = 1.0 if agree else 0.0
    return Grade(q, q >= tau, "agreement")
