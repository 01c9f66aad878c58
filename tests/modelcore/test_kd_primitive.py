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


def test_a_run_killed_mid_way_resumes_from_its_checkpoint_to_the_same_adapter(
    tiny_dir: Path, tmp_path: Path
) -> None:
    whole = _run(tiny_dir, tmp_path / "whole")
    ckpt = tmp_path / "ckpt" / "state.pt"
    cancel = threading.Event()

    def stop_at_step_4(step: int, _total: int, _loss: float) -> None:
        if step == 4:
            cancel.set()  # the "kill": the loop stops before step 5, after the checkpoint at 4

    with pytest.raises(KDCancelledError):
        _run(tiny_dir, tmp_path / "cut", progress=stop_at_step_4, cancel=cancel,
             checkpoint=ckpt, checkpoint_every=2)
    assert ckpt.exists()
    resumed: list[int] = []
    again = _run(tiny_dir, tmp_path / "cut", checkpoint=ckpt, checkpoint_every=2,
                 progress=lambda s, _t, _l: resumed.append(s))
    assert resumed == [5, 6]  # it went on from step 4, not from 0
    assert again.sha256 == whole.sha256  # type: ignore[attr-defined]
