"""docker-compose.yml validates and runs every implemented agent as its own service."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agents.registry import POLICIES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def compose() -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed: the README's setup installs it (apt)")
    out = subprocess.run([binary, "config"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc: dict = yaml.safe_load(out.stdout)
    return doc


def test_every_agent_is_a_service_pointing_at_kafka(compose: dict) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "projections.app:app" in services["projector"]["command"]
    for name in POLICIES:
        assert services[name]["command"] == ["faststream", "run", f"agents.{name}:app"]
        assert services[name]["environment"]["SLEEPWAKE_BOOTSTRAP"] == "kafka:9092"
