"""`sleepwake compare`: every arm on the same seeds and traffic, resumable, then one report.

Each (arm, seed) is a `sleepwake run` of its own (its own embedded broker, adapter store and
report directory `<out>/<arm>/seed-<n>/`), so runs share nothing and `--jobs` of them can run
side by side. A run whose report.md exists is complete and is not run again; a directory
without one (a run stopped half-way) is cleared and run afresh.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from agents.config import SystemConfig
from cli.arms import Arm


@dataclass(frozen=True)
class Planned:
    arm: Arm
    seed: int
    folder: Path

    @property
    def done(self) -> bool:
        return (self.folder / "report.md").exists()

    @property
    def db(self) -> Path:
        return self.folder / "run.duckdb"


class RunFailed(RuntimeError):
    """One arm's run failed; the message names it and where its log is."""


def plan(arms: Sequence[Arm], seeds: Sequence[int], out: Path) -> list[Planned]:
    return [Planned(arm, seed, out / arm.name / f"seed-{seed}") for arm in arms
            for seed in seeds]


def run_one(p: Planned, base: SystemConfig, timeout: float) -> None:
    if p.folder.exists():
        shutil.rmtree(p.folder)  # a run stopped half-way: start it afresh
    p.folder.mkdir(parents=True)
    config = p.arm.config(base, p.seed)
    config = config.model_copy(update={"sleep": config.sleep.model_copy(
        update={"adapter_store": p.folder / "adapters"})})
    (p.folder / "config.json").write_text(config.model_dump_json(indent=2))
    with (p.folder / "run.log").open("w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "run", "--config", str(p.folder / "config.json"),
             "--out", str(p.folder), "--timeout", str(timeout)],
            stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RunFailed(f"{p.arm.name} seed {p.seed} failed (exit {done.returncode}): see "
                        f"{p.folder / 'run.log'}")


def run_all(runs: Sequence[Planned], base: SystemConfig, jobs: int, timeout: float) -> None:
    """Run what is not done yet, `jobs` at a time, with one progress bar over the runs. A run
    that fails does not stop the others; the failures are raised together at the end."""
    todo = [p for p in runs if not p.done]
    failed: list[str] = []
    with tqdm(total=len(runs), initial=len(runs) - len(todo), desc="runs", unit="run") as bar, \
            ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_one, p, base, timeout): p for p in todo}
        try:
            for future in as_completed(futures):
                p = futures[future]
                try:
                    future.result()
                except RunFailed as exc:
                    failed.append(str(exc))
                    bar.set_postfix_str(f"{p.arm.name} seed {p.seed} FAILED")
                    continue
                bar.set_postfix_str(f"{p.arm.name} seed {p.seed} done")
                bar.update()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    if failed:
        raise RunFailed(f"{len(failed)} of {len(todo)} runs failed (the same command runs "
                        "them again; the others are kept): " + "; ".join(failed))
