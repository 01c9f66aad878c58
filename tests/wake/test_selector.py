"""Selector policy: eq. 4 over prototypes built from graded successes, ε-exploration, shadows."""

from __future__ import annotations

from agents.selector.policy import SelectorConfig, make_policy
from events.control import CanaryView, ControlPhaseCompleted, MemberView
from events.envelope import Envelope, Payload
from events.serving import AdapterRef, QueryRouted
from runtime.policy import run
from tests.wake.builders import COHORT, closed, env, graded, near, query, unit

NO_EXPLORE = SelectorConfig(epsilon=0.0)


def routed(decided: list) -> QueryRouted:
    data = decided[0].data
    assert isinstance(data, QueryRouted)
    return data


def test_routes_to_the_member_whose_successes_are_nearest() -> None:
    policy = make_policy(COHORT, NO_EXPLORE)
    x, y = unit(1), unit(2)
    log = [query("q1", x), graded("q1", "b", True), query("q2", y), graded("q2", "c", True),
           closed(0, grades=2, queries=2), query("q3", near(x, 3), cycle=1),
           query("q4", near(y, 4), cycle=1)]
    _, decided = run(policy, log)
    assert routed(decided[5]).model_id == "b"
    assert routed(decided[6]).model_id == "c"
    assert routed(decided[5]).distances["b"] < routed(decided[5]).distances["a"]


def test_a_query_waits_until_the_previous_cycle_is_closed_and_all_its_grades_are_in() -> None:
    policy = make_policy(COHORT, NO_EXPLORE)
    x = unit(1)
    early = [query("q1", x), closed(0, grades=2, queries=1), query("q3", near(x, 3), cycle=1),
             graded("q1", "b", True)]
    _, decided = run(policy, early)
    assert decided[2] == [] and decided[3] == []  # 1 of 2 grades: still waiting
    _, decided = run(policy, [*early, graded("q1", "c", False)])
    assert routed(decided[4]).model_id == "b" and routed(decided[4]).query_id == "q3"


def test_a_decision_is_the_same_whatever_the_arrival_order_and_never_sees_its_own_grade(
) -> None:
    policy = make_policy(COHORT, NO_EXPLORE)
    x, y = unit(1), unit(2)
    cycle0 = [query("q1", x), query("q2", y), graded("q1", "b", True), graded("q2", "c", True),
              closed(0, grades=2, queries=2)]
    q3 = query("q3", near(x, 3), cycle=1)
    own = graded("q3", "c", True, cycle=1)  # q3's own grade, delivered early
    orders = [[*cycle0, q3], [q3, *cycle0[::-1]], [cycle0[4], q3, own, *cycle0[:4]],
              [own, q3, *cycle0[2:], *cycle0[:2]]]
    decisions = set()
    for log in orders:
        _, decided = run(policy, log)
        (route,) = [e.data for d in decided for e in d if e.data.query_id == "q3"]
        decisions.add((route.model_id, tuple(sorted(route.distances.items()))))
    assert len(decisions) == 1


def test_prototypes_only_count_earlier_cycles() -> None:
    policy = make_policy(COHORT, NO_EXPLORE)
    x = unit(1)
    _, decided = run(policy, [query("q1", x), graded("q1", "c", True), query("q2", near(x, 2))])
    # same cycle: the success is not used yet, so cost decides (a and b tie; id breaks it)
    assert routed(decided[2]).model_id == "a"


CONTROLLED = SelectorConfig(epsilon=0.0, controlled=True)


def phase(cycle: int, members: dict | None = None, canaries: list | None = None
          ) -> Envelope[Payload]:
    return env(ControlPhaseCompleted(cycle=cycle, members=members or {},
                                     canaries=canaries or []), f"cycle-{cycle}", cycle)


def test_with_the_sleep_half_a_cycle_waits_for_the_previous_control_phase() -> None:
    policy = make_policy(COHORT, CONTROLLED)
    log = [query("q0", unit(0)), graded("q0", "a", True), closed(0, grades=1),
           query("q1", unit(1), cycle=1)]
    _, decided = run(policy, log)
    assert len(decided[0]) == 1 and decided[3] == []  # cycle 0 needs no phase; cycle 1 does
    _, decided = run(policy, [*log, phase(0)])
    assert routed(decided[4]).query_id == "q1"


def test_never_routes_to_a_sleeping_member() -> None:
    policy = make_policy(COHORT, CONTROLLED)
    asleep = phase(0, {"a": MemberView(state="SLEEPING")})
    log = [closed(0, grades=0, queries=0), asleep,
           *(query(f"q{i}", unit(i), cycle=1) for i in range(20))]
    _, decided = run(policy, log)
    assert all(routed(d).model_id != "a" for d in decided[2:])


def test_a_promoted_adapter_travels_with_the_route() -> None:
    adapter = AdapterRef(cell_id="*", path="/store/x", sha256="a" * 64)
    views = {m: MemberView(version=1, adapter=adapter) for m in ("a", "b", "c")}
    _, decided = run(make_policy(COHORT, CONTROLLED),
                     [closed(0, grades=0, queries=0), phase(0, views),
                      query("q1", unit(1), cycle=1)])
    assert routed(decided[2]).adapter == adapter


def test_exploration_rate_follows_epsilon_and_is_reproducible() -> None:
    policy = make_policy(COHORT, SelectorConfig(epsilon=0.3, seed=7))
    log = [query(f"q{i}", unit(i)) for i in range(400)]
    _, first = run(policy, log)
    _, second = run(policy, log)
    explored = [routed(d).explored for d in first]
    assert 0.22 < sum(explored) / len(explored) < 0.38
    assert [routed(d).model_id for d in first] == [routed(d).model_id for d in second]


def test_shadow_queries_also_go_to_peers_and_the_tier_above() -> None:
    policy = make_policy(COHORT, NO_EXPLORE)
    _, decided = run(policy, [query("q1", unit(1), shadow=True)])
    served = [e.data for e in decided[0] if not e.data.shadow]
    shadows = {e.data.model_id for e in decided[0] if e.data.shadow}
    assert len(served) == 1 and shadows == {"a", "b", "c", "top"} - {served[0].model_id}


def test_canary_gets_its_share_of_target_cell_traffic_only() -> None:
    from events.vectors import encode_vector

    policy = make_policy(COHORT, CONTROLLED)
    target = unit(5)
    new = AdapterRef(cell_id="*", path="/store/new", sha256="b" * 64)
    canary = CanaryView(model_id="c", envelope_id="e", version=2, share=0.5, adapter=new,
                        target_centroids=[encode_vector(target)], radius=0.3)
    opened = [closed(0, grades=0, queries=0), phase(0, canaries=[canary])]
    inside = [query(f"in{i}", near(target, i, 0.02), cycle=1) for i in range(300)]
    outside = [query(f"out{i}", unit(1000 + i), cycle=1) for i in range(100)]
    _, decided = run(policy, [*opened, *inside, *outside])
    in_routes = [routed(d) for d in decided[2:302]]
    share = sum(r.canary for r in in_routes) / len(in_routes)
    assert 0.4 < share < 0.6
    assert all(r.model_id == "c" and r.adapter == new for r in in_routes if r.canary)
    assert all(r.adapter is None for r in in_routes if not r.canary)
    assert not any(routed(d).canary for d in decided[302:])
    held = [closed(0, grades=0, queries=0), phase(0, canaries=[canary.model_copy(
        update={"share": 0.0})])]
    _, after = run(policy, [*held, *inside[:50]])
    assert not any(routed(d).canary for d in after[2:])


def test_a_member_on_canary_answers_its_shadow_sample_with_the_new_version() -> None:
    from events.vectors import encode_vector

    new = AdapterRef(cell_id="*", path="/store/new", sha256="b" * 64)
    canary = CanaryView(model_id="c", envelope_id="e", version=1, share=0.02, adapter=new,
                        target_centroids=[encode_vector(unit(5))], radius=0.3)
    log = [closed(0, grades=0, queries=0), phase(0, canaries=[canary]),
           query("q1", unit(1), cycle=1, shadow=True)]
    _, decided = run(make_policy(COHORT, CONTROLLED), log)
    assert routed(decided[2]).model_id == "a"  # outside the target cells: cost decides
    shadows = {e.data.model_id: e.data.adapter for e in decided[2] if e.data.shadow}
    assert shadows == {"b": None, "c": new, "top": None}


def test_a_promoted_version_is_routed_the_cells_it_was_proven_on() -> None:
    from events.vectors import encode_vector

    cell = unit(5)
    adapter = AdapterRef(cell_id="*", path="/store/x", sha256="a" * 64)
    views = {"c": MemberView(version=1, adapter=adapter, good_at=[encode_vector(cell)])}
    _, decided = run(make_policy(COHORT, CONTROLLED),
                     [closed(0, grades=0, queries=0), phase(0, views),
                      query("q1", near(cell, 1), cycle=1), query("q2", unit(1), cycle=1)])
    assert routed(decided[2]).model_id == "c" and routed(decided[2]).adapter == adapter
    assert routed(decided[3]).model_id == "a"  # elsewhere cost decides, as before


def test_baseline_routes_cheapest_entry_member_or_the_top_tier() -> None:
    x = unit(1)
    log = [query("q1", x), graded("q1", "c", True), closed(0, grades=1, queries=1),
           query("q2", near(x, 3), cycle=1)]
    _, by_prototype = run(make_policy(COHORT, NO_EXPLORE), log)
    assert routed(by_prototype[3]).model_id == "c"  # where c succeeded
    _, cheapest = run(make_policy(COHORT, SelectorConfig(route="cheapest")), log)
    assert routed(cheapest[3]).model_id == "a"  # cost 0.2, first by name; no exploration
    _, top = run(make_policy(COHORT, SelectorConfig(route="top")), log)
    assert (routed(top[3]).model_id, routed(top[3]).tier) == ("top", 1)
