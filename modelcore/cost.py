"""Inference and training cost in FLOPs, and the normaliser that makes the top tier cost 1.00.

docs/design.md, 'Cost': inference ≈ 2·params·tokens, training ≈ 6·params touched·tokens.
The normalised cost divides by what the top tier spends on an average query of the default
task world, so "always the top tier" costs 1.00 per query on that stream and every tier is on
the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from modelcore.template import TEMPLATE, render
from modelcore.world import TaskWorld


def inference_flops(params: int, tokens: float) -> float:
    return 2.0 * params * tokens


def training_flops(params_touched: int, tokens: int) -> float:
    return 6.0 * params_touched * tokens


def mean_query_tokens(
    world: TaskWorld | None = None, n: int = 2000, template: str = TEMPLATE
) -> float:
    """Mean prompt+answer+eos characters (= tokens for the char tokenizer) of a world's stream."""
    tasks = (world or TaskWorld()).queries(0, n)
    return sum(len(render(t.prompt, template)) + len(t.answer) + 1 for t in tasks) / len(tasks)


@cache
def _default_mean_tokens() -> float:
    """The default stream's mean, computed once per process (each worker asks for it)."""
    return mean_query_tokens()


@dataclass(frozen=True)
class CostScale:
    """FLOPs of the top tier on an average query; divide by it to get normalised cost."""

    reference_flops: float

    @classmethod
    def for_top(cls, top_params: int, tokens_per_query: float | None = None) -> CostScale:
        tokens = _default_mean_tokens() if tokens_per_query is None else tokens_per_query
        return cls(inference_flops(top_params, tokens))

    def normalise(self, flops: float) -> float:
        return flops / self.reference_flops
