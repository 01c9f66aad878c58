"""Every implemented agent's pure policy by name (imports no broker: the audit uses it)."""

from __future__ import annotations

from typing import Any

from agents.pinger.policy import POLICY as PINGER
from agents.ponger.policy import POLICY as PONGER
from agents.runtime.policy import Policy
from events.topology import AGENTS

POLICIES: dict[str, Policy[Any]] = {
    "pinger": PINGER,
    "ponger": PONGER,
}

assert set(POLICIES) <= set(AGENTS), "a policy for an agent missing from events.topology"
