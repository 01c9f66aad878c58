"""Running `distil` off the message handler: a background thread with progress and cancel.

A Kafka consumer that blocks past max.poll.interval is evicted, so the sleeper trainer starts
a job, returns, and reports progress from the callback; `cancel()` stops it at the next step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from modelcore.kd import KDResult, Progress


@dataclass
class KDJob:
    """Handle on one background distillation: its future, its cancel flag, its last progress."""

    future: Future[KDResult] = field(default_factory=Future)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    step: int = 0
    total: int = 0
    loss: float = float("nan")

    def cancel(self) -> None:
        self.cancel_event.set()

    def done(self) -> bool:
        return self.future.done()

    def result(self, timeout: float | None = None) -> KDResult:
        return self.future.result(timeout)


def start_kd(
    run: Callable[[Progress, threading.Event], KDResult],
    on_progress: Progress | None = None,
) -> KDJob:
    """Start `run(progress, cancel)` (e.g. a `functools.partial` of `distil`) in a daemon thread.

    The job's future holds the `KDResult`, or the exception (`KDCancelledError` on cancel).
    """
    job = KDJob()

    def progress(step: int, total: int, loss: float) -> None:
        job.step, job.total, job.loss = step, total, loss
        if on_progress is not None:
            on_progress(step, total, loss)

    def target() -> None:
        try:
            job.future.set_result(run(progress, job.cancel_event))
        except BaseException as exc:
            job.future.set_exception(exc)

    job.future.set_running_or_notify_cancel()
    threading.Thread(target=target, name="kd-job", daemon=True).start()
    return job
