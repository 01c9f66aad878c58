"""Every agent's policy, built from the run configuration (the audit and the stack use it).

Pure policies (re-runnable by the audit) are kept apart from those that run a model: the
gateway embeds queries and the workers generate answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from agents.cohort import Cohort, Member, cohort_from_zoo, member_dir
from agents.config import SystemConfig, TrafficConfig
from agents.envelope_broker.policy import BrokerConfig
from agents.pinger.policy import POLICY as PINGER
from agents.plugins import plugin_policies
from agents.ponger.policy import POLICY as PONGER
from runtime.policy import Policy
from runtime.stack import Part


def cohort_of(config: SystemConfig) -> Cohort:
    return cohort_from_zoo(config.zoo)


def policy_factories(config: SystemConfig, cohort: Cohort | None = None
                     ) -> dict[str, Callable[[], Policy[Any]]]:
    """How to build each pure policy (decisions a function of events and config alone).
    Nothing is built or imported until asked: a process that runs one agent pays for its
    own policy only (the cartographer's HDBSCAN, the grader's task generators)."""
    cohort = cohort or cohort_of(config)
    sleep = config.sleep

    def grader() -> Policy[Any]:
        from agents.grader.policy import GraderConfig, make_policy
        from modelcore.tasks import preload

        preload()
        peers = len(cohort.tier(0)) + len(cohort.tier(1)) - 1  # the selector's shadow fan-out
        return make_policy(GraderConfig(shadow_peers=peers))

    def selector() -> Policy[Any]:
        from agents.selector.policy import make_policy

        return make_policy(cohort, config.selector.policy_config(
            config.traffic.seed, controlled=sleep.enabled))

    def meta_selector() -> Policy[Any]:
        from agents.meta_selector.policy import make_policy
        from modelcore.calibration import preload

        preload()
        return make_policy(cohort, config.meta.policy_config(controlled=sleep.enabled))

    def cartographer() -> Policy[Any]:
        from agents.cartographer.policy import CartographyConfig, make_policy

        return make_policy(cohort, CartographyConfig(**sleep.cartography.model_dump()))

    def envelope_broker() -> Policy[Any]:
        from agents.envelope_broker.policy import make_policy

        return make_policy(cohort, broker_config(config, cohort))

    def canary_judge() -> Policy[Any]:
        from agents.canary_judge.policy import CanaryConfig, make_policy

        return make_policy(CanaryConfig(**sleep.canary.model_dump()))

    factories: dict[str, Callable[[], Policy[Any]]] = {
        "pinger": lambda: PINGER, "ponger": lambda: PONGER, "grader": grader,
        "selector": selector, "meta_selector": meta_selector}
    if sleep.enabled:
        factories |= {"cartographer": cartographer, "envelope_broker": envelope_broker,
                      "canary_judge": canary_judge}
    plugins = plugin_policies(config)
    return factories | {name: _built(policy) for name, policy in plugins.items()}


def _built(policy: Policy[Any]) -> Callable[[], Policy[Any]]:
    return lambda: policy


def pure_policies(config: SystemConfig, cohort: Cohort | None = None) -> dict[str, Policy[Any]]:
    """Every pure policy, built (the audit and the in-process stack run them all)."""
    return {name: build() for name, build in policy_factories(config, cohort).items()}


def trainer_part(config: SystemConfig) -> Part:
    """The sleeper trainer: its policy folds the log, its runner trains in a child process.
    Its episode settings price a step in always-top queries, which draws sample tasks:
    seconds of imports, so they are worked out when the agent loads, off the event loop."""
    from agents.trainer.policy import TrainerConfig
    from agents.trainer.policy import make_policy as trainer_policy
    from agents.trainer.runner import TrainerAgent

    trainer = TrainerConfig(examples=config.sleep.examples)
    return Part("trainer", trainer_policy(trainer),
                build=partial(TrainerAgent, settings=partial(episode_settings, config),
                              trainer=trainer))


def episode_settings(config: SystemConfig) -> Any:
    """What every episode of this run's trainer is given (agents.trainer.episode)."""
    from agents.trainer.episode import EpisodeSettings
    from modelcore.arch import ENTRY

    cohort = cohort_of(config)
    s = config.sleep
    return EpisodeSettings(
        zoo=config.zoo, store=s.adapter_store.resolve(),
        teacher=cohort.cheapest(cohort.top_tier).model_id, unit_flops=unit_flops(cohort),
        max_tokens=ENTRY.max_positions, rank=s.kd_rank, lr=s.kd_lr,
        replay_weight=s.kd_replay_weight, batch=s.kd_batch, checkpoint_every=s.checkpoint_every)


def unit_flops(cohort: Cohort) -> float:
    """FLOPs of one always-top query: the unit training and serving are both counted in."""
    from modelcore.cost import CostScale

    return CostScale.for_top(cohort.cheapest(cohort.top_tier).params).reference_flops


def broker_config(config: SystemConfig, cohort: Cohort) -> BrokerConfig:
    """The broker's budget in the cost unit every other figure uses (one always-top query)."""
    from modelcore.arch import ENTRY

    s = config.sleep
    unit = unit_flops(cohort)
    return BrokerConfig(alpha=s.alpha, budget_per_cycle=s.budget_per_cycle,
                        slot_cycles=s.slot_cycles, target_cells=s.target_cells,
                        cooldown_cycles=s.cooldown_cycles, min_gap_mass=s.min_gap_mass,
                        min_window=s.min_window, min_cell_gap=s.min_cell_gap,
                        horizon=config.traffic.cycles if config.traffic.mode == "lockstep"
                        else None,
                        rows_per_step=2 * s.kd_batch, max_tokens=ENTRY.max_positions,
                        unit_flops=unit, sleeper=s.sleeper, seed=config.traffic.seed)


def proof_parts(*names: str) -> list[Part]:
    """Parts of the proof flow (pinger, ponger)."""
    policies: dict[str, Policy[Any]] = {"pinger": PINGER, "ponger": PONGER}
    return [Part(n, policies[n]) for n in names]


def pure_agent(name: str) -> Any:
    """The FastStream agent of one pure policy, configured by $SLEEPWAKE_CONFIG."""
    from agents.config import ConfigError, load_config
    from runtime.shell import Agent

    factories = policy_factories(load_config())
    if name not in factories:
        raise ConfigError(f"{name} belongs to the sleep half, which this configuration turns "
                          "off (sleep.enabled is false): enable it or do not run this agent")
    return Agent(name, factories[name]())


def router_of(config: SystemConfig) -> tuple[Callable[[Sequence[str]], Any],
                                              Callable[[str], float]]:
    """The configured router embedding and its normalised cost per query (the benchmark
    traffic source and the HTTP front both embed with it)."""
    from modelcore.router_embedding import embedder, router_cost

    cohort = cohort_of(config)
    top = cohort.cheapest(cohort.top_tier).params
    name = config.traffic.embedder
    return embedder(name), partial(router_cost, name, top_params=top)


def world_of(traffic: TrafficConfig) -> Any:
    """The benchmark stream the traffic configuration asks for, its drift included."""
    from modelcore.world import Drift, Mix, TaskWorld

    drift, base = traffic.drift, Mix()
    if drift is None:
        return TaskWorld(seed=traffic.seed)
    if drift.to == "new-family":
        before = Mix(families=tuple((f, 0.0 if f == drift.family else w)
                                    for f, w in base.families), levels=base.levels)
        return TaskWorld(seed=traffic.seed, mix=before, drifts=(Drift(drift.at_cycle, base),))
    harder = Mix(families=base.families, levels=tuple((f, (0.2, 0.4, 0.4))
                                                      for f, _ in base.levels))
    return TaskWorld(seed=traffic.seed, drifts=(Drift(drift.at_cycle, harder),))


def make_gateway(config: SystemConfig) -> Policy[Any]:
    from agents.gateway.policy import Traffic
    from agents.gateway.policy import make_policy as gateway_policy
    from modelcore.building import one_torch_thread
    from modelcore.tasks import preload

    one_torch_thread()
    preload()
    t = config.traffic
    embed, cost = router_of(config)
    return gateway_policy(Traffic(t.seed, t.cycles, t.queries_per_cycle, t.shadow, t.mode,
                                  controlled=config.sleep.enabled),
                          world_of(t).queries, embed, config.model_dump_json(), cost)


def make_worker(config: SystemConfig, member: Member, cohort: Cohort) -> Policy[Any]:
    from agents.worker.policy import make_policy
    from modelcore.backend import ModelBackend
    from modelcore.building import one_torch_thread
    from modelcore.cost import CostScale

    one_torch_thread()

    top = cohort.cheapest(cohort.top_tier)
    backend = ModelBackend.from_dir(member_dir(member.model_id, config.zoo),
                                    scale=CostScale.for_top(top.params))
    return make_policy(member, backend)
