"""Builders for serving-event tests: a small cohort and events about given vectors."""

from __future__ import annotations

import numpy as np

from agents.cohort import Cohort, Member
from agents.config import SleepSettings
from events.envelope import Envelope, Payload, make_envelope
from events.serving import CycleGraded, QueryReceived, ResponseGraded
from events.vectors import encode_vector

#: The wake half alone: these tests are about serving (tests/sleep runs the rest).
WAKE_ONLY = SleepSettings(enabled=False)

COHORT = Cohort((
    Member("a", 0, 1000, 0.2), Member("b", 0, 1000, 0.2), Member("c", 0, 1200, 0.25),
    Member("top", 1, 5000, 1.0),
))


def unit(seed: int, dim: int = 384) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def near(v: np.ndarray, seed: int, eps: float = 0.05) -> np.ndarray:
    w = v + eps * unit(seed)
    return w / np.linalg.norm(w)


def env(data: Payload, subject: str = "s", cycle: int = 0) -> Envelope[Payload]:
    return make_envelope(data, source="test", subject=subject, correlationid=f"cycle-{cycle}")


def query(qid: str, vec: np.ndarray, cycle: int = 0, shadow: bool = False,
          text: str = "add: 1+2") -> Envelope[Payload]:
    return env(QueryReceived(query_id=qid, cycle=cycle, text=text, embedding=encode_vector(vec),
                             shadow=shadow), qid, cycle)


def graded(qid: str, model: str, success: bool, cycle: int = 0, tier: int = 0,
           confidence: float = 0.5, final: bool = False) -> Envelope[Payload]:
    return env(ResponseGraded(query_id=qid, cycle=cycle, model_id=model, tier=tier,
                              quality=float(success), success=success, method="reference",
                              final=final, confidence=confidence, cost_norm=0.2), qid, cycle)


def closed(cycle: int, grades: int, queries: int = 1) -> Envelope[Payload]:
    """The grader's closing of a cycle: `grades` grades of it exist."""
    return env(CycleGraded(cycle=cycle, queries=queries, grades=grades), f"cycle-{cycle}", cycle)
