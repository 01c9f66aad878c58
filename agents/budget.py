"""The compute unit the sleep budget is counted in, shared by the envelope broker (which
prices a slot in steps) and the trainer (which checks what an episode really spent).

One unit is the FLOPs of one always-top query (the cost normaliser of serving), so training
and serving are on one scale. A training step is priced at its upper bound: 6·params·tokens
with every row of the step at the model's full context.
"""

from __future__ import annotations


def step_units(params: int, rows: int, max_tokens: int, unit_flops: float) -> float:
    """Upper bound of one training step of a `params`-parameter model, in units."""
    return 6.0 * params * rows * max_tokens / unit_flops
