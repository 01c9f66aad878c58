import shutil
from pathlib import Path

import pytest

from modelcore.backend import AdapterRef, Answer, ModelBackend
from modelcore.cost import CostScale
from modelcore.hashing import HashMismatchError
from modelcore.kd import KDConfig, KDExample, distil

QUERIES = ["rev: abc", "rev: hello", "sum: 1+2"]


def _same(a: Answer, b: Answer) -> bool:
    """Equal up to float noise from batch composition (padding width changes reductions)."""
    return (a.text, a.tokens, a.adapter) == (b.text, b.tokens, b.adapter) and abs(
        a.mean_logprob - b.mean_logprob
    ) < 1e-4


def _adapter(tiny_dir: Path, out: Path, seed: int) -> AdapterRef:
    b = ModelBackend.from_dir(tiny_dir)
    cfg = KDConfig(steps=5, lr=0.05, batch_size=4, seed=seed)
    res = distil(
        b.base, b.tokenizer, b.base, b.tokenizer, [KDExample(q) for q in QUERIES], [], cfg, out
    )
    return AdapterRef(res.path, res.sha256)


@pytest.fixture(scope="module")
def adapter(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AdapterRef:
    return _adapter(tiny_dir, tmp_path_factory.mktemp("adapters"), seed=0)


def test_two_adapters_switch_per_query(tiny_dir: Path, adapter: AdapterRef, tmp_path: Path) -> None:
    other = _adapter(tiny_dir, tmp_path, seed=1)
    b = ModelBackend.from_dir(tiny_dir)
    a1, a2 = b.load_adapter(adapter), b.load_adapter(other)
    only1 = b.generate(QUERIES, adapter=a1, max_new_tokens=4)
    only2 = b.generate(QUERIES, adapter=a2, max_new_tokens=4)
    assert [a.mean_logprob for a in only1] != [a.mean_logprob for a in only2]
    mixed = b.generate_routed(QUERIES, [a1, a2, None], max_new_tokens=4)
    assert _same(mixed[0], only1[0]) and _same(mixed[1], only2[1]) and mixed[2].adapter is None
    b.unload_adapter(a1)
    assert b.generate(QUERIES, adapter=a2, max_new_tokens=4) == only2


def test_generate_reports_tokens_cost_and_confidence(tiny_dir: Path) -> None:
    b = ModelBackend.from_dir(tiny_dir, scale=CostScale(1000.0))
    out = b.generate(QUERIES, max_new_tokens=4)
    assert len(out) == 3
    for q, a in zip(QUERIES, out, strict=True):
        assert a.prompt_tokens == len(q) + 1  # char tokens of "query="
        assert 1 <= a.answer_tokens <= 4
        assert a.flops == 2 * b.params * a.tokens
        assert a.cost == a.flops / 1000.0
        assert 0.0 < a.confidence <= 1.0 and 0.0 <= a.min_margin <= 1.0
    single = b.generate(QUERIES[:1], max_new_tokens=4)[0]
    assert single.text == out[0].text  # left padding does not change the answer


def test_any_hf_directory_loads(tiny_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_dir, plain)
    (plain / "sleepwake.json").unlink()
    b = ModelBackend.from_dir(plain, template="{query}=")
    assert b.name == "plain"
    assert len(b.generate(["rev: ab"], max_new_tokens=3)) == 1


def test_adapters_load_switch_unload_without_reloading_base(
    tiny_dir: Path, adapter: AdapterRef
) -> None:
    b = ModelBackend.from_dir(tiny_dir)
    before = b.generate(QUERIES, max_new_tokens=4)
    name = b.load_adapter(adapter)
    assert b.adapters == (adapter.sha256,) and name == adapter.sha256
    with_adapter = b.generate(QUERIES, adapter=name, max_new_tokens=4)
    assert [a.mean_logprob for a in with_adapter] != [a.mean_logprob for a in before]
    assert all(a.adapter == name for a in with_adapter)
    routed = b.generate_routed(QUERIES, [name, None, name], max_new_tokens=4)
    assert _same(routed[1], before[1]) and _same(routed[0], with_adapter[0])
    assert b.generate(QUERIES, max_new_tokens=4) == before  # base while adapter stays loaded
    b.unload_adapter(name)
    assert b.adapters == ()
    assert b.generate(QUERIES, max_new_tokens=4) == before
    with pytest.raises(KeyError):
        b.generate(QUERIES, adapter=name)


def test_adapter_with_wrong_hash_is_refused(tiny_dir: Path, adapter: AdapterRef) -> None:
    b = ModelBackend.from_dir(tiny_dir)
    with pytest.raises(HashMismatchError, match="refusing"):
        b.load_adapter(AdapterRef(adapter.path, "0" * 64))
    assert b.adapters == ()
