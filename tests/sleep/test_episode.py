"""A sleep episode on the shipped zoo: training, the gate's measurements, and every failure
ending as `TrainingFailed` (never an exception out of the trainer)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agents.canary_judge.policy import CanaryConfig
from agents.canary_judge.policy import make_policy as judge_policy
from agents.trainer.episode import EpisodeSettings, run_episode
from agents.trainer.policy import Job, LogQuery, Target
from events.control import CanaryStarted, GapCell, RolledBack, SleepStarted, TrainingFailed
from events.vectors import encode_vector
from modelcore.cost import CostScale
from modelcore.world import TaskWorld
from runtime.policy import run
from tests.wake.builders import env, unit


def _job(steps: int) -> Job:
    """gcd (the cohort gap) from the default stream's first cycles, as the policy builds it."""
    tasks = [t for c in range(6) for t in TaskWorld(seed=0).queries(c, 64)]
    gcd = [t for t in tasks if t.family == "gcd"]
    rest = [t for t in tasks if t.family != "gcd"]

    def row(i: int, t: object) -> LogQuery:
        return LogQuery(f"q{i}", 0, t.prompt, "", (t.family, t.level, t.seed, t.index))  # type: ignore[attr-defined]

    return Job("env-0", "l0-chain-rev", 1, 4, steps, None,
               tuple(Target(t.prompt, 0.3, 0.8) for t in gcd[:90]),
               tuple(t.prompt for t in rest[:150]),
               tuple(row(i, t) for i, t in enumerate(gcd[90:120])),
               tuple(row(i, t) for i, t in enumerate(rest[150:180])))


def _settings(tmp_path: Path, **kw: object) -> EpisodeSettings:
    base = EpisodeSettings(zoo=None, store=tmp_path / "store", teacher="top-teacher",
                           unit_flops=CostScale.for_top(218_624).reference_flops,
                           max_tokens=64, rank=16, lr=5e-3, replay_weight=10.0, batch=32,
                           checkpoint_every=50)
    return replace(base, **kw)  # type: ignore[arg-type]


def _sleep() -> SleepStarted:
    cell = GapCell(cell_id="cell-1", centroid=encode_vector(unit(1)), size=90, demand=0.33,
                   cover=0.1, solvable_up=1.0, gap=0.3, radius=0.3)
    return SleepStarted(envelope_id="env-0", cycle=0, due_cycle=4, model_id="l0-chain-rev",
                        target_cells=[cell], step_budget=120, hardness=0.3)


def test_an_adapter_taught_wrong_answers_is_stopped_by_the_gate(tmp_path: Path) -> None:
    """The teacher here is l0-rev, right on no gcd query: the adapter learns wrong labels,
    the trainer measures it on held-out log queries, and the judge never lets it serve."""
    outcome = run_episode(_job(80), _settings(tmp_path, teacher="l0-rev"), lambda *_: None)
    assert outcome.TYPE == "TrainingCompleted", outcome
    gate = outcome.gate  # type: ignore[union-attr]
    assert gate is not None and gate.target_after <= gate.target_before
    _, decided = run(judge_policy(CanaryConfig()), [env(_sleep()), env(outcome)])
    verdicts = [e.data for d in decided for e in d]
    assert [type(v) for v in verdicts] == [RolledBack]
    assert not any(isinstance(v, CanaryStarted) for v in verdicts)  # 0 % of traffic


def test_a_nan_loss_ends_as_training_failed(tmp_path: Path) -> None:
    outcome = run_episode(_job(20), _settings(tmp_path, lr=float("inf")), lambda *_: None)
    assert isinstance(outcome, TrainingFailed) and "loss is" in outcome.reason


def test_an_exception_ends_as_training_failed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    outcome = run_episode(_job(5), _settings(tmp_path, store=blocker / "store"),
                          lambda *_: None)
    assert isinstance(outcome, TrainingFailed) and outcome.envelope_id == "env-0"


def test_an_episode_without_targets_fails_clearly(tmp_path: Path) -> None:
    outcome = run_episode(replace(_job(5), targets=()), _settings(tmp_path), lambda *_: None)
    assert isinstance(outcome, TrainingFailed) and "target" in outcome.reason
