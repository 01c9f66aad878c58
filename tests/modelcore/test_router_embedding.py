"""The router's n-gram embedding: the event form's contract, and cheap but still informative."""

from __future__ import annotations

import numpy as np

from events.vectors import check_vector, encode_vector
from modelcore.cost import CostScale
from modelcore.router_embedding import DIM, embed, embedder, flops, minilm_flops, router_cost
from modelcore.world import TaskWorld

TOP_PARAMS = 218_624  # the shipped teacher


def test_shape_normalisation_and_event_form() -> None:
    texts = ["sum: 8-6+0+7", "rev: unmail", "gcd: 12,10", "", "Ünïcödé ✓ 数学"]
    v = embed(texts)
    assert v.shape == (len(texts), DIM) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    for row in v:  # every vector, the empty text's too, passes the events' 384-d check
        check_vector(encode_vector(row))
    assert embed([]).shape == (0, DIM)


def test_deterministic_and_batch_independent() -> None:
    texts = [t.prompt for t in TaskWorld(seed=3).queries(0, 50)]
    a = embed(texts)
    assert np.array_equal(a, embed(texts, batch_size=1))
    assert np.array_equal(a[7], embed([texts[7]])[0])
    # pinned values: the hash is ours, not Python's per-process salted `hash`, so every
    # process and machine puts the same query at the same point
    v = embed(["gcd: 4,6"])[0]
    nonzero = np.flatnonzero(v)
    assert nonzero[:6].tolist() == [0, 31, 67, 81, 85, 88]
    assert np.allclose(v[nonzero[:6]], [0.2085140, -0.2085140, -0.2085140, -0.2085140,
                                        -0.2085140, 0.2085140], atol=1e-6)
    assert abs(float(embed(["gcd: 4,6"])[0] @ embed(["GCD: 4,6"])[0]) - 1.0) < 1e-6


def test_same_family_nearer_than_different_family() -> None:
    tasks = TaskWorld(seed=1).queries(0, 300)
    v = embed([t.prompt for t in tasks])
    fam = np.array([t.family for t in tasks])
    dist = np.sqrt(np.maximum(2.0 - 2.0 * (v @ v.T), 0.0))
    same = fam[:, None] == fam[None, :]
    np.fill_diagonal(same, False)
    different = fam[:, None] != fam[None, :]
    assert dist[same].mean() + 0.25 < dist[different].mean()
    # and per query: its nearest other query is of its own family
    np.fill_diagonal(dist, np.inf)
    assert (fam[dist.argmin(axis=1)] == fam).mean() > 0.95


def test_flops_positive_and_far_below_minilm() -> None:
    prompts = [t.prompt for t in TaskWorld(seed=0).queries(0, 200)]
    ours = np.array([flops(p) for p in prompts])
    theirs = np.array([minilm_flops(p) for p in prompts])
    assert (ours > 0).all() and (theirs > 0).all()
    assert (theirs / ours).min() > 1e4
    assert flops("a" * 100) > flops("a")  # grows with the text
    cost = router_cost("ngram", prompts[0], TOP_PARAMS)
    assert cost == CostScale.for_top(TOP_PARAMS).normalise(flops(prompts[0]))
    assert 0 < cost < 1e-3 < 1.0 < router_cost("minilm", prompts[0], TOP_PARAMS)


def test_embedder_by_name() -> None:
    assert embedder("ngram") is embed
