"""Grader policy: the task's own scorer, one final grade per query, any arrival order."""

from __future__ import annotations

from itertools import permutations

from agents.grader.policy import POLICY, GraderConfig, make_policy
from events.serving import (
    Accepted,
    CycleGraded,
    CycleOpened,
    QueryReceived,
    ResponseGenerated,
    ResponseGraded,
    TaskRef,
)
from modelcore.tasks import make_task
from runtime.policy import Policy, run
from tests.wake.builders import env

TASK = make_task("gcd", "easy", 5, 17)


def received(task: bool = True, shadow: bool = False):
    ref = TaskRef(family=TASK.family, level=TASK.level, seed=TASK.seed,
                  index=TASK.index) if task else None
    return env(QueryReceived(query_id="q", cycle=0, text=TASK.prompt, task=ref, shadow=shadow),
               "q")


def answer(text: str, model: str = "a", tier: int = 0, shadow: bool = False):
    return env(ResponseGenerated(query_id="q", cycle=0, model_id=model, tier=tier, answer=text,
                                 confidence=0.5, prompt_tokens=5, answer_tokens=1,
                                 cost_flops=1.0, cost_norm=0.1, shadow=shadow), "q")


def accepted(model: str = "a"):
    return env(Accepted(query_id="q", cycle=0, model_id=model, tier=0, p_success=0.5, evi=0,
                        theta=0.8), "q")


def grades(log: list, policy: Policy = POLICY) -> list[ResponseGraded]:
    _, decided = run(policy, log)
    return [e.data for step in decided for e in step if isinstance(e.data, ResponseGraded)]


def test_reference_grading_uses_the_tasks_scorer_in_any_order() -> None:
    events = [received(), answer(TASK.answer), accepted()]
    for order in permutations(events):
        out = grades(list(order))
        assert sorted((g.final, g.success) for g in out) == [(False, True), (True, True)]


def test_a_wrong_answer_fails_and_shadow_answers_are_graded_not_served() -> None:
    out = grades([received(), answer("999"), answer(TASK.answer, "b", shadow=True), accepted()])
    by = {(g.model_id, g.final): g for g in out}
    assert by[("a", True)].success is False and by[("a", True)].quality == 0.0
    assert by[("b", False)].success and by[("b", False)].shadow
    assert ("b", True) not in by


def test_without_a_reference_answers_are_graded_by_agreement_once_all_are_in() -> None:
    policy = make_policy(GraderConfig(shadow_peers=2))
    log = [received(task=False, shadow=True), answer("4"), accepted(),
           answer("4", "top", tier=1, shadow=True), answer("5", "b", shadow=True)]
    results = set()
    for order in permutations(log):
        out = grades(list(order), policy)
        results.add(tuple(sorted((g.model_id, g.final, g.method, g.success) for g in out)))
    assert results == {(("a", False, "agreement", True), ("a", True, "agreement", True),
                        ("b", False, "agreement", False))}


def test_the_cycle_closes_once_every_query_is_settled_with_its_grade_count() -> None:
    policy = make_policy(GraderConfig(shadow_peers=1))
    opened = env(CycleOpened(cycle=0, queries=1), "cycle-0")
    log = [received(shadow=True), answer(TASK.answer), accepted(), opened,
           answer("999", "b", shadow=True)]
    for order in permutations(log):
        _, decided = run(policy, list(order))
        closing = [e.data for d in decided for e in d if isinstance(e.data, CycleGraded)]
        assert closing == [CycleGraded(cycle=0, queries=1, grades=3)]
        assert decided[-1] and any(isinstance(e.data, CycleGraded) for e in decided[-1])
    late = answer("7", "c", shadow=True)  # an answer of a closed cycle gets no grade
    _, decided = run(policy, [*log, late])
    assert decided[-1] == []


def test_a_member_answering_as_shadow_and_as_server_gets_both_grades() -> None:
    out = grades([received(), answer("999", "top", 1, shadow=True), answer(TASK.answer, "top", 1),
                   accepted("top")])
    assert sorted((g.final, g.shadow, g.success) for g in out) == [
        (False, False, True), (False, True, False), (True, False, True)]
