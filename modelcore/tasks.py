"""The task world: reasoning-gym generators rendered tersely, with their own scorers.

Every query has a verifiable answer, so quality comes from the generator's `score_answer`
rather than from a judge. Prompts are rendered tersely (`sum: 3+4-2`) because a character
model learns them several times faster than reasoning-gym's long instructions; every part of
the system sees this same text.

Levels are set through the generators' own parameters, and "hard" is the hardest level the
teacher masters (≥ 90 % held out). Two-digit sums were tried and dropped: the teacher reached
only 11 % on them within the build budget, while 1-digit chains of up to 5 terms it masters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reasoning_gym.dataset import ProceduralDataset

LEVELS: tuple[str, ...] = ("easy", "medium", "hard")
NUMERIC = frozenset({"chain", "gcd"})
STRING = frozenset({"reverse"})

# Unbounded index space: reasoning-gym items are a pure function of (seed, index).
_INDEX_SPACE = 2**31 - 1


@dataclass(frozen=True)
class Level:
    """One difficulty of a family: a reasoning-gym dataset and its own generator parameters."""

    dataset: str
    params: tuple[tuple[str, Any], ...]

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


def _expression(meta: Mapping[str, Any]) -> str:
    return str(meta["expression"]).replace(" ", "")


def _word(meta: Mapping[str, Any]) -> str:
    return str(meta["word"])


def _numbers(meta: Mapping[str, Any]) -> str:
    return ",".join(str(n) for n in meta["numbers"])


@dataclass(frozen=True)
class Family:
    """A task family: a terse prefix, how to render an item, and its levels."""

    name: str
    prefix: str
    render: Callable[[Mapping[str, Any]], str]
    levels: Mapping[str, Level]


def _chain(terms: int, digits: int) -> Level:
    span = (("min_terms", terms), ("max_terms", terms))
    return Level("chain_sum", (*span, ("min_digits", digits), ("max_digits", digits)))


def _spell(lo: int, hi: int) -> Level:
    return Level("spell_backward", (("min_word_len", lo), ("max_word_len", hi)))


def _gcd(hi: int) -> Level:
    return Level("gcd", (("min_value", 1), ("max_value", hi)))


FAMILIES: Mapping[str, Family] = {
    "chain": Family(
        "chain",
        "sum",
        _expression,
        {"easy": _chain(3, 1), "medium": _chain(4, 1), "hard": _chain(5, 1)},
    ),
    "reverse": Family(
        "reverse",
        "rev",
        _word,
        {"easy": _spell(3, 4), "medium": _spell(5, 6), "hard": _spell(7, 8)},
    ),
    "gcd": Family("gcd", "gcd", _numbers, {"easy": _gcd(12), "medium": _gcd(24), "hard": _gcd(36)}),
}


@dataclass(frozen=True)
class Task:
    """One query: the terse prompt every component sees, its reference and its scorer entry."""

    family: str
    level: str
    prompt: str
    answer: str
    entry: Mapping[str, Any]
    seed: int = 0  # generator seed and item index: (family, level, seed, index) rebuilds it
    index: int = 0

    @property
    def cell(self) -> tuple[str, str]:
        return (self.family, self.level)


def preload() -> None:
    """Import the generators now (an agent building its policy off the event loop), not at
    the first task drawn or scored, in a handler."""
    import reasoning_gym  # noqa: F401


@functools.lru_cache(maxsize=256)
def _dataset(family: str, level: str, seed: int) -> ProceduralDataset:
    import reasoning_gym  # seconds to import (every generator it has): on first use

    spec = FAMILIES[family].levels[level]
    ds: ProceduralDataset = reasoning_gym.create_dataset(
        spec.dataset, seed=seed, size=_INDEX_SPACE, **spec.kwargs()
    )
    return ds


def make_task(family: str, level: str, seed: int, index: int) -> Task:
    """The `index`-th item of a family x level generator seeded with `seed` (pure)."""
    entry = _dataset(family, level, seed)[index]
    fam = FAMILIES[family]
    prompt = f"{fam.prefix}: {fam.render(entry['metadata'])}"
    return Task(family, level, prompt, str(entry["answer"]), entry, seed, index)


def score(task: Task, answer: str | None) -> float:
    """Reference quality in [0, 1] from the generator's own scorer (answer stripped first)."""
    if answer is None:
        return 0.0
    ds = _dataset(task.family, task.level, 0)
    return float(ds.score_answer(answer.strip(), dict(task.entry)))
