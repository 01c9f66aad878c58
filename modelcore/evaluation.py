"""Held-out accuracy of a backend per family x level (the zoo table, the KD bench, the gate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelcore.backend import ModelBackend
from modelcore.grading import grade_reference
from modelcore.world import all_cells, heldout


@dataclass(frozen=True)
class CellScore:
    """A cell's held-out result, with the raw confidence and outcome of every answer."""

    n: int
    accuracy: float
    cost: float
    confidences: tuple[float, ...] = ()
    successes: tuple[bool, ...] = ()


def evaluate(
    backend: ModelBackend,
    cells: Sequence[tuple[str, str]] | None = None,
    n_per_cell: int = 200,
    adapter: str | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[tuple[str, str], CellScore]:
    """Success rate (Q ≥ τ) and mean normalised cost on each cell's held-out tasks."""
    out: dict[tuple[str, str], CellScore] = {}
    for cell in cells if cells is not None else all_cells():
        tasks = heldout(*cell, n_per_cell, seed)
        answers = []
        for i in range(0, len(tasks), batch_size):
            chunk = tasks[i : i + batch_size]
            answers += backend.generate([t.prompt for t in chunk], adapter)
        ok = [grade_reference(t, a.text).success for t, a in zip(tasks, answers, strict=True)]
        out[cell] = CellScore(
            len(tasks),
            sum(ok) / max(1, len(ok)),
            sum(a.cost for a in answers) / max(1, len(ok)),
            tuple(a.confidence for a in answers),
            tuple(ok),
        )
    return out


def mean_accuracy(scores: dict[tuple[str, str], CellScore], families: Sequence[str]) -> float:
    """Unweighted mean accuracy over the cells of `families`."""
    sel = [s.accuracy for (f, _), s in scores.items() if f in families]
    return sum(sel) / max(1, len(sel))
