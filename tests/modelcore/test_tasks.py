from modelcore.tasks import FAMILIES, LEVELS, make_task, score
from modelcore.world import (
    Drift,
    Mix,
    TaskWorld,
    heldout,
    is_heldout,
    is_reserved,
    is_small_domain,
    training_examples,
)


def test_terse_prompts_and_reference_scorer() -> None:
    for family in FAMILIES:
        for level in LEVELS:
            t = make_task(family, level, seed=1, index=3)
            assert t.prompt.startswith(FAMILIES[family].prefix + ": ")
            assert score(t, t.answer) == 1.0
            assert score(t, t.answer + "9") < 1.0
            assert score(t, None) == 0.0


def test_stream_is_deterministic_and_never_held_out() -> None:
    w = TaskWorld(seed=3)
    a, b = w.queries(5, 300), w.queries(5, 300)
    assert [t.prompt for t in a] == [t.prompt for t in b]
    assert [t.prompt for t in a] != [t.prompt for t in w.queries(6, 300)]
    assert not any(is_reserved(t) for t in a)


def test_default_mix_is_70_25_5() -> None:
    qs = TaskWorld(seed=1).queries(0, 2000)
    share = {lv: sum(t.level == lv for t in qs) / len(qs) for lv in LEVELS}
    assert abs(share["easy"] - 0.70) < 0.04
    assert abs(share["medium"] - 0.25) < 0.04
    assert abs(share["hard"] - 0.05) < 0.02


def test_drift_changes_the_mix_from_its_cycle() -> None:
    only_rev = Mix(families=(("reverse", 1.0),))
    w = TaskWorld(seed=1, drifts=(Drift(at_cycle=3, mix=only_rev),))
    assert {t.family for t in w.queries(2, 200)} == set(FAMILIES)
    assert {t.family for t in w.queries(3, 200)} == {"reverse"}


def test_heldout_is_disjoint_from_training_data_where_the_domain_is_large() -> None:
    assert not is_small_domain("chain", "easy")
    train = {t.prompt for t in training_examples([(("chain", "easy"), 2000)], seed=0)}
    held = heldout("chain", "easy", 100)
    assert len(held) == 100 and all(is_heldout(t.prompt) for t in held)
    assert not train & {t.prompt for t in held}
    assert len({t.prompt for t in heldout("reverse", "hard", 150)}) == 150


def test_small_domains_are_flagged_and_their_heldout_overlaps() -> None:
    assert is_small_domain("gcd", "easy")  # numbers <= 12: 144 prompts
    held = heldout("gcd", "easy", 500)
    assert len(held) == 144
    train = {t.prompt for t in training_examples([(("gcd", "easy"), 2000)], seed=0)}
    assert len({t.prompt for t in held} & train) >= 140  # (nearly) all of it
