"""The policies of plug-in agents: entry-point group `sleepwake.policies`.

A plug-in's spec (events.plugins, group `sleepwake.agents`) says what it reads and emits; its
policy, declared here under the same name, is a factory `make_policy(config: SystemConfig)
-> Policy` that reads its own settings from `config.plugins[<name>]`. The stack runs it, the
service shell serves it (`faststream run`), and the audit re-decides it, like a built-in.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agents.config import ConfigError, SystemConfig, explain
from events.plugins import PluginError
from events.topology import BUILTIN, SYSTEM
from runtime.policy import Policy

GROUP = "sleepwake.policies"

M = TypeVar("M", bound=BaseModel)


def plugin_names() -> tuple[str, ...]:
    """Names of the installed plug-in agents (their specs joined the topology)."""
    return tuple(spec.name for spec in SYSTEM[len(BUILTIN):])


def plugin_policies(config: SystemConfig) -> dict[str, Policy[Any]]:
    """Every installed plug-in's policy, built from the run configuration."""
    names = plugin_names()
    unknown = sorted(set(config.plugins) - set(names))
    if unknown:
        raise ConfigError(f"plugins: no installed plug-in agent named {', '.join(unknown)} "
                          f"(installed: {', '.join(names) or 'none'}); install it or remove "
                          "its settings")
    policies: dict[str, Policy[Any]] = {}
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if entry.name not in names:
            raise PluginError(f"{entry.value} declares a policy for {entry.name!r}, which no "
                              "spec under 'sleepwake.agents' declares; add the spec")
        factory: Callable[[SystemConfig], Any] = entry.load()
        policy = factory(config)
        if not isinstance(policy, Policy):
            raise PluginError(f"{entry.value} returned a {type(policy).__name__}, not a "
                              "runtime.policy.Policy")
        policies[entry.name] = policy
    missing = [n for n in names if n not in policies]
    if missing:
        raise PluginError(f"plug-in agent(s) {', '.join(missing)} declare a spec but no policy "
                          f"under '{GROUP}': without one they can be neither run nor audited")
    return policies


def plugin_settings(config: SystemConfig, name: str, model: type[M]) -> M:
    """A plug-in's own settings, `config.plugins[name]`, validated by its model: a bad value
    fails at start with the field and the fix, as the built-in settings do."""
    try:
        return model.model_validate(config.plugins.get(name, {}))
    except ValidationError as exc:
        raise ConfigError("invalid plug-in settings:\n" + explain(exc, f"plugins.{name}.")
                          ) from exc
