"""The routing field's summary figures over a router's operating points (pure functions).

A router family (an arm and its `--sweep` points) draws a cost-quality curve: one point
(serving cost per query, accuracy) per operating point. Two figures summarise it:

- **APGR**, the average performance gap recovered over the cost range: PGR(c) is the best
  PGR among the points that cost at most c (0 below the cheapest point; points are not mixed,
  so this is the step curve, not its convex hull), averaged over c from cheapest-only's
  serving cost to always-top's. A family of one point gets PGR · (c_top - c) / (c_top - c_low).
- **Cost at 95 % of always-top quality**: the cheapest point whose accuracy reaches 95 % of
  always-top's; None if no point does.

Both are computed per seed (each seed's points against that seed's cheapest-only and
always-top), so the report can give their spread.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]  # (serving cost per query, accuracy)


def pgr(accuracy: float, low: float, top: float) -> float:
    """Share of the cheapest-only → always-top accuracy gap recovered."""
    return (accuracy - low) / (top - low)


def apgr(points: Sequence[Point], low: Point, top: Point) -> float:
    """Average over c in [c_low, c_top] of the best PGR reachable at cost ≤ c."""
    (c_low, a_low), (c_top, a_top) = low, top
    if c_top <= c_low or a_top == a_low:
        raise ValueError("APGR needs always-top to cost more than cheapest-only and to be "
                         "more accurate")
    steps = sorted((min(max(c, c_low), c_top), pgr(a, a_low, a_top)) for c, a in points)
    area, best = 0.0, 0.0
    for (c, value), nxt in zip(steps, [*(s[0] for s in steps[1:]), c_top], strict=True):
        best = max(best, value)
        area += best * (nxt - c)
    return area / (c_top - c_low)


def cost_at_quality(points: Sequence[Point], target: float) -> float | None:
    """The cheapest point's cost among those with accuracy ≥ target (None if none)."""
    reached = [c for c, a in points if a >= target]
    return min(reached) if reached else None
