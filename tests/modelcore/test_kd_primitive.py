import threading
from functools import partial
from pathlib import Path

import pytest

from modelcore.backend import AdapterRef, ModelBackend
from modelcore.hashing import dir_sha256
from modelcore.kd import KDCancelledError, KDConfig, KDExample, distil
from modelcore.kd_job import start_kd

EXAMPLES = [KDExample("rev: abc", 2.0), KDExample("rev: hello", 0.5), KDExample("rev: dog")]
CFG = KDConfig(steps=6, batch_size=4, replay_batch_size=2, rank=4)


def _run(tiny_dir: Path, out: Path, cfg: KDConfig = CFG, **kw: object) -> object:
    b = ModelBackend.from_dir(tiny_dir)
    return distil(b.base, b.tokenizer, b.base, b.tokenizer, EXAMPLES, ["sum: 1+1"], cfg, out, **kw)  # type: ignore[arg-type]


def test_distil_is_deterministic_and_content_addressed(tiny_dir: Path, tmp_path: Path) -> None:
    a = _run(tiny_dir, tmp_path / "a")
    b = _run(tiny_dir, tmp_path / "b")
    assert a.sha256 == b.sha256 and a.exact_kd  # type: ignore[attr-defined]
    assert Path(a.path).name == a.sha256 == dir_sha256(a.path)  # type: ignore[attr-defined]
    assert (Path(a.path) / "adapter_config.json").exists()  # type: ignore[attr-defined]
    other = _run(tiny_dir, tmp_path / "c", KDConfig(**{**CFG.__dict__, "seed": 1}))
    assert other.sha256 != a.sha256  # type: ignore[attr-defined]
    ModelBackend.from_dir(tiny_dir).load_adapter(AdapterRef(a.path, a.sha256))  # type: ignore[attr-defined]


def test_background_job_reports_progress_and_result(tiny_dir: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    b = ModelBackend.from_dir(tiny_dir)
    run = partial(distil, b.base, b.tokenizer, b.base, b.tokenizer, EXAMPLES, [], CFG, tmp_path)
    job = start_kd(
        lambda p, c: run(progress=p, cancel=c), on_progress=lambda s, _t, _l: seen.append(s)
    )
    res = job.result(timeout=60)
    assert seen == list(range(1, CFG.steps + 1)) and job.step == job.total == CFG.steps
    assert res.steps == CFG.steps


def test_cancellation_stops_the_run(tiny_dir: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(KDCancelledError):
        _run(tiny_dir, tmp_path, cancel=cancel)
    assert not any(tmp_path.glob("*/adapter_config.json"))


def test_different_vocabularies_fall_back_to_sequence_level_kd(
    tiny_dir: Path, tmp_path: Path
) -> None:
    b = ModelBackend.from_dir(tiny_dir)
    teacher_tok = ModelBackend.from_dir(tiny_dir).tokenizer
    teacher_tok.add_tokens(["<extra>"])  # a different vocabulary: logits no longer align
    res = distil(b.base, b.tokenizer, b.base, teacher_tok, EXAMPLES, [], CFG, tmp_path)
    assert not res.exact_kd
    assert b.load_adapter(AdapterRef(res.path, res.sha256)) == res.sha256
