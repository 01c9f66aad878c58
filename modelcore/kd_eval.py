"""The KD experiment behind the benchmark and its unit test: teach one gap family, measure both.

It runs `distil` exactly as the sleeper trainer would (targets from the training stream of the
gap family, replay from the member's own families) and scores the member on held-out tasks
before and after, on the gap family and on its own families.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelcore.backend import AdapterRef, ModelBackend
from modelcore.evaluation import evaluate, mean_accuracy
from modelcore.kd import KDConfig, KDExample, distil
from modelcore.world import family_cells, training_examples


@dataclass(frozen=True)
class KDOutcome:
    gap_before: float
    gap_after: float
    own_before: float
    own_after: float
    seconds: float
    cpu_seconds: float
    sha256: str

    @property
    def lift(self) -> float:
        return self.gap_after - self.gap_before

    @property
    def forgetting(self) -> float:
        return self.own_before - self.own_after


def kd_experiment(
    student: ModelBackend,
    teacher: ModelBackend,
    gap_family: str,
    own_families: Sequence[str],
    config: KDConfig,
    out_root: Path,
    n_targets: int = 4500,
    n_replay: int = 3000,
    n_eval: int = 100,
    seed: int = 0,
) -> KDOutcome:
    """Distil `gap_family` into `student` (replay on its own families) and score before/after."""
    gap_cells, own_cells = family_cells([gap_family]), family_cells(own_families)
    per_gap = n_targets // len(gap_cells)
    targets = training_examples([(c, per_gap) for c in gap_cells], seed)
    per_own = n_replay // len(own_cells)
    replay = training_examples([(c, per_own) for c in own_cells], seed + 1)
    before = evaluate(student, gap_cells + own_cells, n_eval)
    t0, c0 = time.perf_counter(), time.process_time()
    res = distil(
        student.base,
        student.tokenizer,
        teacher.base,
        teacher.tokenizer,
        [KDExample(t.prompt) for t in targets],
        [t.prompt for t in replay] if config.replay_weight > 0 else [],
        config,
        out_root,
        template=student.template,
        teacher_template=teacher.template,
    )
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    name = student.load_adapter(AdapterRef(res.path, res.sha256))
    after = evaluate(student, gap_cells + own_cells, n_eval, adapter=name)
    student.unload_adapter(name)
    return KDOutcome(
        mean_accuracy(before, [gap_family]),
        mean_accuracy(after, [gap_family]),
        mean_accuracy(before, own_families),
        mean_accuracy(after, own_families),
        seconds,
        cpu_seconds,
        res.sha256,
    )
