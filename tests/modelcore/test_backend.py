import shutil
from pathlib import Path

import pytest

from modelcore.backend import AdapterRef, ModelBackend
from modelcore.cost import CostScale
from modelcore.hashing import HashMismatchError
from modelcore.kd import KDConfig, KDExample, distil

QUERIES = ["rev: abc", "rev: hello", "add: 1+2"]


@pytest.fixture(scope="module")
def adapter(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AdapterRef:
    b = ModelBackend.from_dir(tiny_dir)
    res = distil(
        b.base,
        b.tokenizer,
        b.base,
        b.tokenizer,
        [KDExample(q) for q in QUERIES],
        [],
        KDConfig(steps=5, lr=0.05, batch_size=4),
        tmp_path_factory.mktemp("adapters"),
    )
    return AdapterRef(res.path, res.sha256)


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
    assert routed[1] == before[1] and routed[0] == with_adapter[0]
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
