"""Every agent's policy, built from the run configuration (the audit and the stack use it).

Pure policies (re-runnable by the audit) are kept apart from those that run a model: the
gateway embeds queries and the workers generate answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from agents.cohort import Cohort, Member, cohort_from_zoo, member_dir
from agents.config import SystemConfig
from agents.gateway.policy import Traffic
from agents.gateway.policy import make_policy as gateway_policy
from agents.grader.policy import GraderConfig
from agents.grader.policy import make_policy as grader_policy
from agents.meta_selector.policy import make_policy as meta_policy
from agents.pinger.policy import POLICY as PINGER
from agents.ponger.policy import POLICY as PONGER
from agents.selector.policy import make_policy as selector_policy
from runtime.policy import Policy
from runtime.stack import Part


def cohort_of(config: SystemConfig) -> Cohort:
    return cohort_from_zoo(config.zoo)


def pure_policies(config: SystemConfig, cohort: Cohort | None = None) -> dict[str, Policy[Any]]:
    """Policies whose decisions are a function of events and config alone."""
    policies: dict[str, Policy[Any]] = {"pinger": PINGER, "ponger": PONGER}
    cohort = cohort or cohort_of(config)
    peers = len(cohort.tier(0)) + len(cohort.tier(1)) - 1  # the selector's shadow fan-out
    policies["grader"] = grader_policy(GraderConfig(shadow_peers=peers))
    policies["selector"] = selector_policy(cohort,
                                           config.selector.policy_config(config.traffic.seed))
    policies["meta_selector"] = meta_policy(cohort, config.meta.policy_config())
    return policies


def proof_parts(*names: str) -> list[Part]:
    """Parts of the proof flow (pinger, ponger)."""
    policies: dict[str, Policy[Any]] = {"pinger": PINGER, "ponger": PONGER}
    return [Part(n, policies[n]) for n in names]


def pure_agent(name: str) -> Any:
    """The FastStream agent of one pure policy, configured by $SLEEPWAKE_CONFIG."""
    from agents.config import load_config
    from runtime.shell import Agent

    return Agent(name, pure_policies(load_config())[name])


def one_torch_thread() -> None:
    """One intra-op thread in every process that runs a model: on shared cores more threads
    wait on each other, and the thread count changes float results in the last digits
    (an embedding, a confidence), which would make a run depend on its process layout."""
    import torch

    torch.set_num_threads(1)


def router_of(config: SystemConfig) -> tuple[Callable[[Sequence[str]], Any],
                                              Callable[[str], float]]:
    """The configured router embedding and its normalised cost per query (the benchmark
    traffic source and the HTTP front both embed with it)."""
    from modelcore.router_embedding import embedder, router_cost

    cohort = cohort_of(config)
    top = cohort.cheapest(cohort.top_tier).params
    name = config.traffic.embedder
    return embedder(name), partial(router_cost, name, top_params=top)


def make_gateway(config: SystemConfig) -> Policy[Any]:
    from modelcore.world import TaskWorld

    one_torch_thread()
    t = config.traffic
    embed, cost = router_of(config)
    return gateway_policy(Traffic(t.seed, t.cycles, t.queries_per_cycle, t.shadow, t.mode),
                          TaskWorld(seed=t.seed).queries, embed, config.model_dump_json(), cost)


def make_worker(config: SystemConfig, member: Member, cohort: Cohort) -> Policy[Any]:
    from agents.worker.policy import make_policy
    from modelcore.backend import ModelBackend
    from modelcore.cost import CostScale

    one_torch_thread()

    top = cohort.cheapest(cohort.top_tier)
    backend = ModelBackend.from_dir(member_dir(member.model_id, config.zoo),
                                    scale=CostScale.for_top(top.params))
    return make_policy(member, backend)
