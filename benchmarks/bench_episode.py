"""One sleep episode as the live system feeds it: what a slot of the default budget buys.

    python benchmarks/bench_episode.py --member l0-chain-rev --cycles 6 --seed 0

The trainer learns from the log, not from the task generator. Here the log is the default
stream's first `--cycles` cycles (what a default run's first sleep learns from: it starts
once the gap map rests on six cycles); its gcd queries are the targets (the cohort gap) and
the rest the replay, split as the trainer's policy splits them, with the same 30 % held out.
The step budget is the one the envelope broker gives with the default configuration.
Before/after accuracy is measured on the generator's held-out tasks per level (never served,
never trained on), on gcd and on the member's own families; the gate's own figures
(held-out log queries) are printed too.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agents.budget import step_units
from agents.config import SystemConfig, load_config
from agents.registry import cohort_of, episode_settings, unit_flops
from agents.trainer.episode import run_episode
from agents.trainer.policy import Job, LogQuery, Target, held_out
from modelcore.backend import AdapterRef, ModelBackend
from modelcore.tasks import score
from modelcore.world import TaskWorld, heldout
from modelcore.zoo import DEFAULT_ZOO, ENTRY, member_dir


def _job(member: str, cycles: int, seed: int, steps: int) -> Job:
    tasks = [(f"c{c}-q{i}", t) for c in range(cycles)
             for i, t in enumerate(TaskWorld(seed=seed).queries(c, 64))]
    rows = [(LogQuery(qid, 0, t.prompt, "", (t.family, t.level, t.seed, t.index)), t)
            for qid, t in tasks]
    held = [(q, t) for q, t in rows if held_out(q.query_id, 0.3)]
    train = [(q, t) for q, t in rows if not held_out(q.query_id, 0.3)]
    return Job("bench", member, 1, cycles, steps, None,
               tuple(Target(q.text, 0.3, 0.9) for q, t in train if t.family == "gcd"),
               tuple(q.text for q, t in train if t.family != "gcd"),
               tuple(q for q, t in held if t.family == "gcd")[:60],
               tuple(q for q, t in held if t.family != "gcd")[:60])


def _accuracy(model: ModelBackend, tasks: list, adapter: str | None) -> float:
    answers = model.generate([t.prompt for t in tasks], adapter=adapter)
    return sum(score(t, a.text) >= 1.0 for t, a in zip(tasks, answers, strict=True)) / len(tasks)


CONFIG = typer.Option(None, "--config", help="A run configuration (JSON); default: defaults.")


def main(member: str = "l0-chain-rev", cycles: int = 6, seed: int = 0, n_eval: int = 100,
         steps: int = 0, config_file: Path | None = CONFIG) -> None:
    config = load_config(config_file) if config_file else SystemConfig()
    cohort = cohort_of(config)
    unit = unit_flops(cohort)
    s = config.sleep
    per_step = step_units(cohort.member(member).params, 2 * s.kd_batch, ENTRY.max_positions, unit)
    budget = steps or int(s.alpha * s.budget_per_cycle * s.slot_cycles // per_step)
    job = _job(member, cycles, seed, budget)
    settings = episode_settings(config)
    with tempfile.TemporaryDirectory() as store:
        settings = type(settings)(**{**settings.__dict__, "store": Path(store)})
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = run_episode(job, settings, lambda *_: None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if outcome.TYPE != "TrainingCompleted":
            raise SystemExit(f"episode failed: {outcome}")
        spec = {m.name: m for m in DEFAULT_ZOO}[member]
        student = ModelBackend.from_dir(member_dir(spec))
        ref = outcome.adapters[0]  # type: ignore[union-attr]
        name = student.load_adapter(AdapterRef(ref.path, ref.sha256))
        print(f"member {member}, {len(job.targets)} target and {len(job.replay)} replay "
              f"queries from cycles 0-{cycles - 1} (seed {seed}), {budget} steps "
              f"(default slot), {wall:.0f} s wall / {cpu:.0f} s CPU in this process "
              f"(training ran in it)\n")
        print("| held-out tasks | before | after | change (pts) |\n|---|---:|---:|---:|")
        cells = [("gcd", lv) for lv in ("easy", "medium", "hard")]
        cells += [(f, lv) for f in spec.families for lv in ("easy", "medium", "hard")]
        for family, level in cells:
            tasks = heldout(family, level, n_eval, seed)
            before, after = _accuracy(student, tasks, None), _accuracy(student, tasks, name)
            print(f"| {family} {level} | {before:.2f} | {after:.2f} | "
                  f"{100 * (after - before):+.0f} |")
        gate = outcome.gate  # type: ignore[union-attr]
        print(f"\ngate (held-out log queries): target {gate.target_before:.2f} → "
              f"{gate.target_after:.2f} (n={gate.n_target}), outside {gate.outside_before:.2f}"
              f" → {gate.outside_after:.2f} (n={gate.n_outside}); train FLOPs "
              f"{outcome.train_flops:.3g} = {outcome.train_flops / unit:,.0f} units")  # type: ignore[union-attr]


if __name__ == "__main__":
    typer.run(main)
