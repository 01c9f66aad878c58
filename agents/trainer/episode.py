"""One sleep episode, run in the trainer's own process: Algorithm 2 on the LoRA-KD primitive,
then the measurements the canary judge's offline gate decides on.

Weights w(x) = G(cell)/max G + EVI(cell) + conf_teacher(x): gap size, the upper tier's expected
gain there, and how sure the teacher is of the answer it teaches. Training checkpoints, so a
process killed mid-episode is resumed by the next run of the same job and ends with the same
adapter bytes. Every failure (an exception, a NaN loss, spending past the step budget) becomes
`TrainingFailed`; the member then serves as it did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.budget import step_units
from agents.trainer.policy import Job, LogQuery
from events.control import GateStats, TrainingCompleted, TrainingFailed
from events.serving import AdapterRef

Report = Callable[[int, int, float], None]


@dataclass(frozen=True)
class EpisodeSettings:
    zoo: Path | None
    store: Path
    teacher: str
    unit_flops: float  # FLOPs of one always-top query (agents.budget)
    max_tokens: int  # the model's context: a step's upper bound per row
    rank: int
    lr: float
    replay_weight: float
    batch: int
    checkpoint_every: int


def _success(student_answer: str, query: LogQuery, teacher_answer: str) -> bool:
    from modelcore.grading import grade_agreement, grade_reference
    from modelcore.tasks import make_task

    if query.task is not None:
        return grade_reference(make_task(*query.task), student_answer).success
    return grade_agreement(student_answer, teacher_answer).success


def _accuracy(student: object, teacher_answers: dict[str, str], queries: Sequence[LogQuery],
              adapter: str | None) -> float:
    if not queries:
        return 0.0
    answers = student.generate([q.text for q in queries], adapter=adapter)  # type: ignore[attr-defined]
    ok = [_success(a.text, q, teacher_answers[q.text]) for a, q in zip(answers, queries,
                                                                      strict=True)]
    return round(sum(ok) / len(ok), 6)


class _Curve:
    """The loss every `every` steps, kept beside the checkpoint so that a resumed episode
    reports the same curve as one never interrupted."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, every
        self.points: dict[int, float] = {}
        if path.exists():
            self.points = {int(k): v for k, v in json.loads(path.read_text()).items()}

    def add(self, step: int, total: int, loss: float) -> bool:
        if step % self.every and step != total:
            return False
        self.points = {k: v for k, v in self.points.items() if k < step}
        self.points[step] = round(loss, 6)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.points))
        return True

    def losses(self) -> list[float]:
        return [self.points[k] for k in sorted(self.points)]


def run_episode(job: Job, s: EpisodeSettings, report: Report
                ) -> TrainingCompleted | TrainingFailed:
    """Train and measure one episode; never raises (a failure is an event too)."""
    try:
        return _run(job, s, report)
    except Exception as exc:  # any failure must reach the log as an event
        return _failed(job, f"{type(exc).__name__}: {exc}"[:1000])


def _failed(job: Job, reason: str) -> TrainingFailed:
    return TrainingFailed(envelope_id=job.envelope_id, model_id=job.model_id,
                          cycle=job.due_cycle, reason=reason)


def _run(job: Job, s: EpisodeSettings, report: Report) -> TrainingCompleted | TrainingFailed:
    from agents.cohort import member_dir
    from modelcore.backend import AdapterRef as LoadRef
    from modelcore.backend import ModelBackend
    from modelcore.building import one_torch_thread
    from modelcore.kd import KDConfig, KDExample, distil

    one_torch_thread()
    if job.base_adapter is not None:
        return _failed(job, "training on top of a promoted adapter is not supported yet")
    if not job.targets:
        return _failed(job, "no query of the log lies in the target cells")
    student = ModelBackend.from_dir(member_dir(job.model_id, s.zoo))
    teacher = ModelBackend.from_dir(member_dir(s.teacher, s.zoo))
    texts = sorted({t.text for t in job.targets}
                   | {q.text for q in (*job.eval_target, *job.eval_outside)})
    taught = dict(zip(texts, teacher.generate(texts), strict=True))
    top_gap = max(t.gap for t in job.targets) or 1.0
    examples = [KDExample(t.text, t.gap / top_gap + max(t.evi, 0.0)
                          + taught[t.text].confidence) for t in job.targets]
    cfg = KDConfig(rank=s.rank, alpha=2 * s.rank, steps=job.step_budget, lr=s.lr,
                   batch_size=s.batch, replay_batch_size=s.batch, replay_weight=s.replay_weight,
                   seed=int(job.key()[:8], 16), train_token_rows=False)
    checkpoint = s.store / "checkpoints" / f"{job.envelope_id}-{job.key()}.pt"
    curve = _Curve(checkpoint.with_suffix(".curve.json"), max(1, job.step_budget // 20))

    def progress(step: int, total: int, loss: float) -> None:
        if not math.isfinite(loss):  # stop at once: no later step can repair it
            raise FloatingPointError(f"loss is {loss} at step {step} of {total}")
        if curve.add(step, total, loss):
            report(step, total, loss)

    res = distil(student.base, student.tokenizer, teacher.base, teacher.tokenizer, examples,
                 list(job.replay), cfg, s.store, progress=progress, checkpoint=checkpoint,
                 checkpoint_every=s.checkpoint_every)
    spent = res.train_flops / s.unit_flops
    budget = job.step_budget * step_units(student.params, 2 * s.batch, s.max_tokens,
                                          s.unit_flops)
    if spent > budget * (1 + 1e-9):
        return _failed(job, f"spent {spent:.0f} units, the slot bought {budget:.0f}")
    answers = {k: a.text for k, a in taught.items()}
    before = (_accuracy(student, answers, job.eval_target, None),
              _accuracy(student, answers, job.eval_outside, None))
    name = student.load_adapter(LoadRef(res.path, res.sha256))
    after = (_accuracy(student, answers, job.eval_target, name),
             _accuracy(student, answers, job.eval_outside, name))
    gate = GateStats(target_before=before[0], target_after=after[0], outside_before=before[1],
                     outside_after=after[1], n_target=len(job.eval_target),
                     n_outside=len(job.eval_outside))
    checkpoint.unlink(missing_ok=True)  # done: a re-run (its outcome unpublished) starts over
    curve.path.unlink(missing_ok=True)
    return TrainingCompleted(
        envelope_id=job.envelope_id, model_id=job.model_id, cycle=job.due_cycle,
        version=job.version, adapters=[AdapterRef(cell_id="*", path=res.path,
                                                  sha256=res.sha256)],
        steps=res.steps, train_flops=res.train_flops, examples=len(job.targets),
        curve=curve.losses(),
        gate=gate)
