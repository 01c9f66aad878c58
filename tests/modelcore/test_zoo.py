from dataclasses import replace
from pathlib import Path

from modelcore.backend import ModelBackend
from modelcore.zoo import DEFAULT_ZOO, is_cached, member_dir, tiers, train_member

from .conftest import TINY


def test_shipped_weights_match_the_recipe() -> None:
    """CI needs no pretraining: every default member is cached under its current digest."""
    assert all(is_cached(s) for s in DEFAULT_ZOO)
    t = tiers()
    assert len(t[0]) >= 3 and max(t) > 0
    params = {s.name: ModelBackend.from_dir(member_dir(s)).params for s in DEFAULT_ZOO}
    entry = [params[s.name] for s in t[0]]
    assert max(entry) == min(entry)  # a cohort's members cost the same
    assert all(params[s.name] > max(entry) for s in t[max(t)])


def test_pretraining_is_deterministic_and_keyed_by_digest(tmp_path: Path, tiny_dir: Path) -> None:
    again = train_member(TINY, tmp_path)
    weights = "model.safetensors"
    assert (again / weights).read_bytes() == (tiny_dir / weights).read_bytes()
    assert is_cached(TINY, tmp_path)
    changed = replace(TINY, seed=TINY.seed + 1)
    assert changed.digest() != TINY.digest()
    assert not is_cached(changed, tmp_path)
