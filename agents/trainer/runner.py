"""The sleeper trainer's shell: the agent shell plus a runner for training processes.

Its handler only folds the log (agents.trainer.policy); an episode whose data is in is
trained in a separate process, one at a time (serving keeps the other core), and its outcome
is published when the process ends — never inside a handler, which would be evicted from its
consumer group past max.poll.interval. Outcome ids are keyed by the envelope, so an episode
that a restart runs again (resuming from its checkpoint) publishes the same event.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import queue
import signal
import sys
from collections.abc import Callable
from typing import Any

from agents.trainer.episode import EpisodeSettings, run_episode
from agents.trainer.policy import Job, TrainerConfig, pending_jobs
from events.control import TrainingProgress
from events.envelope import derived_id
from runtime.metrics import training_progress
from runtime.policy import Emit, Policy
from runtime.shell import LOADER, Agent

log = logging.getLogger("sleepwake.trainer")


def _die_with_parent() -> None:
    """A trainer killed (SIGKILL) takes its training process with it (Linux), so a restarted
    trainer never races an orphan over the same checkpoint."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child(job: Job, settings: EpisodeSettings, out: Any) -> None:
    """The training process: progress and the outcome go back through `out`."""
    from modelcore.quiet import quiet_libraries

    _die_with_parent()
    quiet_libraries()
    result = run_episode(job, settings,
                         lambda step, total, loss: out.put(("progress", step, total, loss)))
    out.put(("done", result.model_dump_json(), result.TYPE))


class TrainerAgent(Agent[Any]):
    def __init__(self, name: str, policy: Policy[Any], *,
                 settings: Callable[[], EpisodeSettings],
                 trainer: TrainerConfig, **kwargs: Any) -> None:
        """`settings` says how to work the episode settings out (seconds: see `load`)."""
        super().__init__(name, policy, **kwargs)
        self.cfg = trainer
        self.settings_of = settings
        self.running: str | None = None
        self.finished: set[str] = set()  # published here; the own topic confirms it later
        self.runner: asyncio.Task[None] | None = None
        self.app.after_startup(self.launch)

    async def load(self) -> None:
        """Work out the episode settings on the loader thread, then load as every agent."""
        self.settings = await asyncio.get_running_loop().run_in_executor(
            LOADER, self.settings_of)
        await super().load()

    async def handle_records(self, batch: Any) -> None:
        await super().handle_records(batch)
        await self.launch()

    async def launch(self) -> None:
        if self.runner is None or self.runner.done():
            self.runner = asyncio.create_task(self.drain())

    async def drain(self) -> None:
        """Train every pending episode, oldest first, one process at a time."""
        while jobs := [j for j in pending_jobs(self.cfg, self.state)
                       if j.envelope_id not in self.finished]:
            job = jobs[0]
            self.running = job.envelope_id
            log.info("trainer: episode %s — %s learns %d target queries (%d replay) in %d "
                     "steps", job.envelope_id, job.model_id, len(job.targets), len(job.replay),
                     job.step_budget)
            outcome = await self.train(job)
            await self.publish_outcome(job, outcome)
            self.finished.add(job.envelope_id)
        self.running = None

    async def train(self, job: Job) -> tuple[str, str]:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_child, args=(job, self.settings, out), daemon=True)
        proc.start()
        last_step = 0
        while True:
            try:
                msg = await asyncio.to_thread(out.get, True, 1.0)
            except queue.Empty:
                if not proc.is_alive():
                    reason = f"training process exited with code {proc.exitcode}"
                    return ("failed", reason)
                continue
            if msg[0] == "progress":
                _, step, total, loss = msg
                training_progress(job.model_id, step, loss, step - last_step)
                last_step = step
                await self.publish(TrainingProgress(
                    envelope_id=job.envelope_id, model_id=job.model_id, step=step, steps=total,
                    loss=loss if loss == loss else 0.0), job, f"progress|{job.envelope_id}|{step}")
            else:
                proc.join()
                out.close()
                out.join_thread()
                return (msg[2], msg[1])

    async def publish_outcome(self, job: Job, outcome: tuple[str, str]) -> None:
        from events.control import TrainingCompleted, TrainingFailed

        kind, body = outcome
        if kind == "failed":
            data: Any = TrainingFailed(envelope_id=job.envelope_id, model_id=job.model_id,
                                       cycle=job.due_cycle, reason=body)
        elif kind == TrainingCompleted.TYPE:
            data = TrainingCompleted.model_validate_json(body)
        else:
            data = TrainingFailed.model_validate_json(body)
        log.info("trainer: episode %s ended: %s", job.envelope_id, data.model_dump_json())
        await self.publish(data, job, f"outcome|{job.envelope_id}")

    async def publish(self, data: Any, job: Job, key: str) -> None:
        emit = Emit(data, subject=job.model_id, correlationid=f"cycle-{job.due_cycle}", key=key)
        await self.send([self.outgoing(emit, derived_id(self.id_source, key), None)])

