"""Agents from other packages: specs declared under the entry-point group `sleepwake.agents`.

A plug-in distribution lists, in its `pyproject.toml`,

    [project.entry-points."sleepwake.agents"]
    cost_watchdog = "cost_watchdog.spec:SPEC"

and its `AgentSpec` joins the topology when `events.topology` is first imported: topics,
dead-letter topics, the catalogue, the projector's subscription and the audit follow from it.
A spec that would make the system ambiguous (a name or event type taken, an unknown input)
stops the import with a message naming the distribution and the fix, never half-loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from events.envelope import Payload
from events.spec import AgentSpec

GROUP = "sleepwake.agents"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class PluginError(ImportError):
    """An installed plug-in cannot join the system; the message says which and what to fix."""


def plugin_specs(builtin: Iterable[AgentSpec]) -> tuple[AgentSpec, ...]:
    """Every installed plug-in's spec, checked against the built-in agents and each other."""
    known = list(builtin)
    found: list[AgentSpec] = []
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        spec = _load(entry)
        _check(entry, spec, [*known, *found])
        found.append(spec)
    names = {s.name for s in (*known, *found)}
    for spec in found:
        unknown = [n for n in spec.consumes if n not in names]
        if unknown:
            raise PluginError(f"{_who(spec.name)} reads unknown agent(s) {unknown}: name "
                              f"agents of the system ({', '.join(sorted(names))})")
    return tuple(found)


def _who(name: str, entry: EntryPoint | None = None) -> str:
    dist = entry.dist.name if entry is not None and entry.dist is not None else None
    return f"plug-in agent {name!r}" + (f" (distribution {dist})" if dist else "")


def _load(entry: EntryPoint) -> AgentSpec:
    dist = entry.dist.name if entry.dist is not None else entry.value.split(".")[0]
    fix = f"fix the plug-in or uninstall it (pip uninstall {dist})"
    try:
        spec = entry.load()
    except Exception as exc:
        raise PluginError(f"{_who(entry.name, entry)}: loading {entry.value} failed ({exc}); "
                          f"{fix}") from exc
    if not isinstance(spec, AgentSpec):
        raise PluginError(f"{_who(entry.name, entry)}: {entry.value} is a "
                          f"{type(spec).__name__}, not an events.spec.AgentSpec; {fix}")
    return spec


def _check(entry: EntryPoint, spec: AgentSpec, taken: list[AgentSpec]) -> None:
    who = _who(entry.name, entry)
    if spec.name != entry.name:
        raise PluginError(f"{who}: the entry point is named {entry.name!r} but the spec "
                          f"{spec.name!r}; give both the same name")
    if not NAME.match(spec.name):
        raise PluginError(f"{who}: an agent name is 1-48 of a-z, 0-9 and _, starting with a "
                          "letter (it becomes the topic name)")
    if spec.name in {s.name for s in taken}:
        raise PluginError(f"{who}: the name is taken by another agent; rename the plug-in")
    if not spec.produces:
        raise PluginError(f"{who}: produces no event type; declare what it emits")
    types = {p.TYPE for s in taken for p in s.produces}
    for payload in spec.produces:
        if not (isinstance(payload, type) and issubclass(payload, Payload) and payload.TYPE):
            raise PluginError(f"{who}: {payload!r} is not an events.envelope.Payload with a TYPE")
        if payload.TYPE in types:
            raise PluginError(f"{who}: event type {payload.TYPE!r} is taken; rename it")
