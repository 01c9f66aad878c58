"""A deterministic query stream over the task families: mix, drift, held-out split.

Where a cell's domain is large, the held-out split is a hash partition of the prompt text, so
it never overlaps the training stream or the pretraining data. Where it is small (gcd of
numbers ≤ 36 has at most 1,296 prompts), production queries keep coming from the whole domain,
so excluding 15 % of it would test something never asked; such a cell's held-out set is drawn
from the whole domain and overlaps training (`is_small_domain`; the zoo table marks it).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from modelcore.tasks import FAMILIES, LEVELS, Task, make_task

HELDOUT_SHARE = 0.15
# Generator seeds: the stream and the held-out set draw from disjoint reasoning-gym seeds too.
_STREAM_SEED = 1
_HELDOUT_SEED = 2


SMALL_DOMAIN = 2000
_PROBE = 4000


@functools.lru_cache(maxsize=64)
def is_small_domain(family: str, level: str) -> bool:
    """True when 4,000 draws give fewer than 2,000 distinct prompts (a domain of ≲ 2,500)."""
    prompts = {make_task(family, level, _STREAM_SEED, i).prompt for i in range(_PROBE)}
    return len(prompts) < SMALL_DOMAIN


def is_reserved(task: Task) -> bool:
    """True when a task belongs to the held-out partition of a large-domain cell."""
    return not is_small_domain(task.family, task.level) and is_heldout(task.prompt)


def is_heldout(prompt: str) -> bool:
    """True for the ~15 % of all prompts reserved for evaluation, never served or trained on."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_SHARE


@dataclass(frozen=True)
class Mix:
    """Family weights and, per family, the easy/medium/hard weights of the stream."""

    families: tuple[tuple[str, float], ...] = tuple((f, 1.0) for f in FAMILIES)
    levels: tuple[tuple[str, tuple[float, float, float]], ...] = tuple(
        (f, (0.70, 0.25, 0.05)) for f in FAMILIES
    )

    def family_probs(self) -> tuple[list[str], np.ndarray]:
        names = [f for f, _ in self.families]
        w = np.array([w for _, w in self.families], dtype=np.float64)
        return names, w / w.sum()

    def level_probs(self, family: str) -> np.ndarray:
        w = np.array(dict(self.levels)[family], dtype=np.float64)
        return w / w.sum()


@dataclass(frozen=True)
class Drift:
    """From cycle `at_cycle` on, the stream follows `mix` (the latest drift wins)."""

    at_cycle: int
    mix: Mix


@dataclass(frozen=True)
class TaskWorld:
    """The production query stream: a pure function of (seed, cycle, position)."""

    seed: int = 0
    mix: Mix = field(default_factory=Mix)
    drifts: tuple[Drift, ...] = ()

    def mix_at(self, cycle: int) -> Mix:
        current = self.mix
        for d in sorted(self.drifts, key=lambda d: d.at_cycle):
            if d.at_cycle <= cycle:
                current = d.mix
        return current

    def queries(self, cycle: int, n: int) -> list[Task]:
        """The `n` queries of `cycle` (same arguments, same queries), none of them held out."""
        mix = self.mix_at(cycle)
        rng = np.random.default_rng([self.seed, cycle])
        names, fprobs = mix.family_probs()
        out: list[Task] = []
        while len(out) < n:
            family = names[int(rng.choice(len(names), p=fprobs))]
            level = LEVELS[int(rng.choice(len(LEVELS), p=mix.level_probs(family)))]
            task = _draw_training(family, level, rng)
            out.append(task)
        return out


def _draw_training(family: str, level: str, rng: np.random.Generator) -> Task:
    while True:
        task = make_task(family, level, _STREAM_SEED, int(rng.integers(0, 2**31 - 1)))
        if not is_reserved(task):
            return task


def training_examples(counts: Sequence[tuple[tuple[str, str], int]], seed: int) -> list[Task]:
    """Pretraining / replay data: `n` draws per (cell, n) from the non-held-out partition."""
    rng = np.random.default_rng([seed, 7])
    return [_draw_training(f, lv, rng) for (f, lv), n in counts for _ in range(n)]


def heldout(family: str, level: str, n: int, seed: int = 0) -> list[Task]:
    """Up to `n` distinct held-out tasks of one cell (disjoint from training unless small)."""
    seen: dict[str, Task] = {}
    rng = np.random.default_rng([seed, 11])
    small = is_small_domain(family, level)
    for _ in range(n * 40):
        task = make_task(family, level, _HELDOUT_SEED, int(rng.integers(0, 2**31 - 1)))
        if small or is_heldout(task.prompt):
            seen.setdefault(task.prompt, task)
            if len(seen) >= n:
                break
    return list(seen.values())


def all_cells() -> list[tuple[str, str]]:
    return [(f, lv) for f in FAMILIES for lv in LEVELS]


def family_cells(families: Sequence[str]) -> list[tuple[str, str]]:
    return [(f, lv) for f in families for lv in LEVELS]
