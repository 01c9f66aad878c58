"""The cohort hierarchy as the serving agents see it: members, tiers and per-query cost.

It is configuration, not state: every agent that needs it is built with the same `Cohort`,
and the audit re-runs policies with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Member:
    model_id: str
    tier: int
    params: int
    cost: float  # expected cost of one query, normalised so that always-top = 1.00


@dataclass(frozen=True)
class Cohort:
    members: tuple[Member, ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a cohort needs at least one member")
        ids = [m.model_id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate model ids in cohort: {ids}")

    @property
    def top_tier(self) -> int:
        return max(m.tier for m in self.members)

    def tier(self, n: int) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.tier == n)

    def member(self, model_id: str) -> Member:
        for m in self.members:
            if m.model_id == model_id:
                return m
        raise KeyError(f"{model_id!r} is not a member of the cohort")

    def cheapest(self, tier: int) -> Member:
        """The member a query escalated to `tier` goes to (cheapest, then by id)."""
        return min(self.tier(tier), key=lambda m: (m.cost, m.model_id))


def cohort_from_zoo(root: Path | None = None) -> Cohort:
    """The cohort of a zoo folder: each member's tier and size from its metadata.

    Cost per query is normalised to the top tier: with one shared tokenizer and the same
    prompts, tokens per query are about equal across members, so C(M) ≈ params(M)/params(top).
    """
    from modelcore.zoo_files import META_FILE, WEIGHTS_DIR

    folder = root or WEIGHTS_DIR
    metas = [json.loads(p.read_text()) for p in sorted(folder.glob(f"*/{META_FILE}"))]
    if not metas:
        raise FileNotFoundError(
            f"no zoo members in {folder}: run `sleepwake zoo build` or point `zoo` at a zoo"
        )
    top = max(m["tier"] for m in metas)
    top_params = max(m["params"] for m in metas if m["tier"] == top)
    return Cohort(tuple(
        Member(m["name"], int(m["tier"]), int(m["params"]), m["params"] / top_params)
        for m in metas
    ))


def member_dir(model_id: str, root: Path | None = None) -> Path:
    from modelcore.zoo_files import WEIGHTS_DIR

    return (root or WEIGHTS_DIR) / model_id
