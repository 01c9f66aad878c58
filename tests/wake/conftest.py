"""The wake tests' configuration: the tiny untrained zoo (tests/conftest.py), wake half only.

What the serving agents do with answers is tested here; how good the answers are is the
model core's business (tests/modelcore, and the README tables from the shipped zoo).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config import MetaSettings, SystemConfig, TrafficConfig
from tests.wake.builders import WAKE_ONLY


@pytest.fixture
def tiny_config(tiny_zoo: Path) -> SystemConfig:
    return SystemConfig(
        zoo=tiny_zoo,
        traffic=TrafficConfig(seed=3, cycles=2, queries_per_cycle=12, shadow=0.25),
        meta=MetaSettings(prior_gain=0.5),
        sleep=WAKE_ONLY,
    )
