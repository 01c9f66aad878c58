"""docker-compose.yml validates and runs every implemented agent as its own service."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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
    agents = sorted(p.parent.name for p in (ROOT / "agents").glob("*/service.py"))
    assert {"gateway", "selector", "meta_selector", "grader", "worker"} <= set(agents)
    for name in agents:
        mine = {k: v for k, v in services.items() if k == name or k.startswith(f"{name}-")}
        assert mine, f"docker-compose.yml has no service for agents.{name}"
        for service in mine.values():
            assert service["command"] == ["faststream", "run", f"agents.{name}:app"]
            assert service["environment"]["SLEEPWAKE_BOOTSTRAP"] == "kafka:9092"
    workers = {v["environment"]["SLEEPWAKE_MODEL"] for k, v in services.items()
               if k.startswith("worker-")}
    assert len(workers) >= 4  # one per zoo member
