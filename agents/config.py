"""The run configuration every agent is built from: one validated object, loaded once.

It comes from a JSON file named by $SLEEPWAKE_CONFIG (or defaults). A bad value fails at
start-up with the field, the value and what is allowed, never half-way through a cycle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.meta_selector.policy import MetaConfig
from agents.selector.policy import SelectorConfig


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DriftSettings(_Frozen):
    """A change of the query stream at one cycle: how fast does each arm recover?"""

    at_cycle: int = Field(ge=1, description="The first cycle served with the new stream.")
    to: Literal["new-family", "harder"] = Field(
        description="new-family: `family` is absent before at_cycle and joins the traffic at "
        "its usual share from then on; harder: from at_cycle every family is 20/40/40 "
        "easy/medium/hard instead of 70/25/5.")
    family: str = Field(default="gcd", description="The family new-family adds (default gcd, "
                        "which only the shipped teacher learned).")

    @field_validator("family")
    @classmethod
    def _known(cls, family: str) -> str:
        from modelcore.tasks import FAMILIES

        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; the task world has "
                             f"{', '.join(FAMILIES)}")
        return family


class TrafficConfig(_Frozen):
    seed: int = Field(default=0, description="Seed of the benchmark query stream.")
    cycles: int = Field(default=30, ge=1, description="Cycles to serve (30: time for a sleep "
                        "episode, its canary and what follows).")
    queries_per_cycle: int = Field(default=64, ge=1, description="Queries in each cycle.")
    shadow: float = Field(default=0.05, ge=0, le=1,
                          description="Share of queries also answered by peers and the tier above.")
    mode: Literal["lockstep", "free"] = Field(
        default="lockstep", description="lockstep: a cycle opens when the previous one is "
        "fully graded (replayable); free: traffic never waits.")
    embedder: Literal["minilm", "ngram"] = Field(
        default="ngram", description="The router's query embedding (modelcore.router_embedding"
        "): ngram, hashed character 1-3-grams (~3e-4 per query, always-top = 1), or minilm, "
        "all-MiniLM-L6-v2 (~57 per query); routing accuracy within the spread of each other "
        "(README, 'Router embedding').")
    drift: DriftSettings | None = Field(default=None, description="Change the stream at a "
                                        "cycle (see DriftSettings); none by default.")


class SelectorSettings(_Frozen):
    w_d: float = Field(default=1.0, ge=0)
    w_c: float = Field(default=0.3, ge=0)
    epsilon: float = Field(default=0.05, ge=0, le=1)
    k_max: int = Field(default=10, ge=1)
    decay: float = Field(default=0.99, gt=0, lt=1)
    route: Literal["prototypes", "cheapest", "top"] = Field(
        default="prototypes", description="prototypes: eq. 4 over behavioural prototypes; "
        "cheapest: always the cheapest entry member (a cascade's first step); top: always the "
        "top tier (baselines of `sleepwake compare`).")

    def policy_config(self, seed: int, controlled: bool = False) -> SelectorConfig:
        return SelectorConfig(w_d=self.w_d, w_c=self.w_c, epsilon=self.epsilon,
                              k_max=self.k_max, decay=self.decay, seed=seed,
                              controlled=controlled, route=self.route)


class MetaSettings(_Frozen):
    lam: float = Field(default=0.2, ge=0, description="λ: quality per unit normalised cost.")
    delta: float = Field(default=0.1, gt=0, lt=1,
                         description="Accepted-on-confidence answers must be ≥ 1-δ right.")
    theta_default: float = Field(default=0.8, ge=0, le=1)
    prior_gain: float = Field(default=0.5, ge=-1, le=1)
    rule: Literal["evi", "confidence", "never"] = Field(
        default="evi", description="evi: escalate iff calibrated confidence < θ and EVI > 0 "
        "(Algorithm 1); confidence: iff confidence < θ (a confidence cascade); never: accept "
        "every answer (baselines of `sleepwake compare`).")

    def policy_config(self, controlled: bool = False) -> MetaConfig:
        return MetaConfig(lam=self.lam, delta=self.delta, theta_default=self.theta_default,
                          prior_gain=self.prior_gain, controlled=controlled, rule=self.rule)


class CartographySettings(_Frozen):
    window_cycles: int = Field(default=6, ge=1, description="Cycles of graded queries the gap "
                               "map clusters (a sliding window).")
    min_cluster_size: int = Field(default=8, ge=2, description="HDBSCAN min_cluster_size.")
    match_radius: float = Field(default=0.35, gt=0, description="A new cell keeps the id of an "
                                "old one whose centroid is this close (else it gets a new id).")
    prior: float = Field(default=2.0, ge=0, description="Pseudo-counts of the success-rate "
                         "prior (toward 0.5) in cover and solvable_up.")


class CanarySettings(_Frozen):
    initial_share: float = Field(default=0.02, gt=0, le=1,
                                 description="Share of target-cell traffic at canary start.")
    cap: float = Field(default=0.5, gt=0, le=1, description="Share the doubling stops at.")
    stable_slots: int = Field(default=2, ge=1, description="Slots at the cap before promotion.")
    delta: float = Field(default=0.05, ge=0, lt=1, description="Largest accepted drop outside "
                         "the target cells (offline gate and live slots).")
    min_gain: float = Field(default=0.1, ge=0, lt=1, description="Offline gate: accuracy on "
                            "the target cells must rise by at least this much.")
    z: float = Field(default=1.96, gt=0, description="Wilson interval z of the live test.")


class SleepSettings(_Frozen):
    enabled: bool = Field(default=True, description="Run the sleep half (cartographer, "
                          "envelope broker, trainer, canary judge); false: wake only.")
    alpha: float = Field(default=1 / 3, gt=0, lt=1, description="Training share alpha of the "
                         "compute budget; inference keeps 1 - alpha.")
    budget_per_cycle: float = Field(
        default=500_000.0, gt=0, description="B_tot: compute the cohort's hardware offers per "
        "cycle, in units of one always-top query (the normalised cost unit).")
    sleeper: Literal["hardness", "random"] = Field(
        default="hardness", description="hardness: argmax H_M among members that may sleep; "
        "random: a seeded random one of them (a baseline).")
    examples: Literal["gap", "uniform", "escalated"] = Field(
        default="gap", description="What an episode distils: gap, the log's queries in the "
        "target cells (replay: the rest); uniform, every log query; escalated, the queries "
        "the meta-selector escalated (replay: the rest). The gate is the same for all three.")
    slot_cycles: int = Field(default=4, ge=1, description="Cycles one sleep slot lasts; its "
                             "step budget is alpha·B_tot·slot_cycles over the cost of one step.")
    target_cells: int = Field(default=3, ge=1, description="Cells (top by G) one episode "
                              "trains on, at most.")
    min_cell_gap: float = Field(default=0.01, ge=0, description="A cell is a target only with "
                                "at least this gap G (a cell the cohort covers is not one).")
    cooldown_cycles: int = Field(default=4, ge=0, description="Cycles a member rests from "
                                 "sleep after its episode ends.")
    min_gap_mass: float = Field(default=0.02, ge=0, description="No envelope opens while the "
                                "cohort's gap mass is below this.")
    min_window: int = Field(default=384, ge=0, description="No envelope opens before the gap "
                            "map rests on this many graded queries.")
    adapter_store: Path = Field(default=Path("runs/adapters"), description="Content-addressed "
                                "adapter store (a shared volume in compose).")
    kd_rank: int = Field(default=16, ge=1)
    kd_lr: float = Field(default=5e-3, gt=0)
    kd_replay_weight: float = Field(default=30.0, ge=0)
    kd_batch: int = Field(default=32, ge=1)
    checkpoint_every: int = Field(default=100, ge=1, description="Trainer checkpoint interval "
                                  "(steps).")
    cartography: CartographySettings = CartographySettings()
    canary: CanarySettings = CanarySettings()


class SystemConfig(_Frozen):
    zoo: Path | None = Field(default=None,
                             description="Model zoo folder (default: the shipped weights).")
    traffic: TrafficConfig = TrafficConfig()
    selector: SelectorSettings = SelectorSettings()
    meta: MetaSettings = MetaSettings()
    sleep: SleepSettings = SleepSettings()
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings of plug-in agents by agent name; each "
        "plug-in validates its own section (agents.plugins.plugin_settings).")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the field and the fix."""


def load_config(path: str | Path | None = None) -> SystemConfig:
    """Read the config from `path`, else $SLEEPWAKE_CONFIG, else defaults."""
    source = path or os.environ.get("SLEEPWAKE_CONFIG")
    if not source:
        return SystemConfig()
    file = Path(source)
    if not file.exists():
        raise ConfigError(f"config file {file} not found (set by --config or SLEEPWAKE_CONFIG)")
    try:
        return SystemConfig.model_validate(json.loads(file.read_text()))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{file} has invalid settings:\n{explain(exc)}") from exc


def explain(exc: ValidationError, prefix: str = "") -> str:
    """One line per invalid field: where, what is wrong, and the value given."""
    return "\n".join(f"  {prefix}{'.'.join(str(p) for p in e['loc'])}: {e['msg']} "
                     f"(got {e.get('input')!r})" for e in exc.errors())
