"""docker-compose.yml validates, runs every implemented agent as its own service, and
monitors them all (Prometheus, Grafana)."""

from __future__ import annotations

import json
import re
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


def _mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (compose v1 prints "src:dst:ro", v2 dicts)."""
    pairs = ((v["target"], v.get("source", "")) if isinstance(v, dict)
             else tuple(reversed(v.split(":")[:2])) for v in service.get("volumes", []))
    return dict(pairs)


def _metric_names() -> set[str]:
    from prometheus_client.metrics import MetricWrapperBase

    from runtime import metrics

    return {family.name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)
            for family in m.describe()}


def test_prometheus_scrapes_every_sleepwake_service(compose: dict) -> None:
    services = compose["services"]
    port = services["projector"]["environment"]["SLEEPWAKE_METRICS_PORT"]
    served = {name for name, s in services.items()
              if s.get("command", [None])[:2] == ["faststream", "run"]}
    assert {"projector", "pinger", "worker-l0-rev"} <= served
    for name in served:
        assert services[name]["environment"]["SLEEPWAKE_METRICS_PORT"] == port, name
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {(n, sd["port"]) for job in config["scrape_configs"]
               for sd in job.get("dns_sd_configs", []) for n in sd["names"]}
    assert scraped == {(name, int(port)) for name in served}
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert Path(_mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"]) == (
        ROOT / "deploy/prometheus/prometheus.yml")


def test_grafana_is_provisioned_with_the_sleepwake_dashboard(compose: dict) -> None:
    grafana = compose["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana")
    mounted = {target: Path(source) for target, source in _mounts(grafana).items()}
    provisioning = mounted["/etc/grafana/provisioning"]
    source = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards/sleepwake.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    (dashboard,) = mounted[folder].glob("*.json")
    panels = json.loads(dashboard.read_text())["panels"]
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels}
    wanted = {"Events handled": "sleepwake_events_handled_total",
              "Decision latency p95": "histogram_quantile(0.95",
              "Consumer lag": "sleepwake_consumer_lag",
              "Dead letters by reason": "sleepwake_dead_letters_total",
              "Model tokens per second": "sleepwake_model_tokens_total",
              "Training loss": "sleepwake_training_loss"}
    for title, expr in wanted.items():
        assert any(t.startswith(title) and expr in e for t, e in exprs.items()), title
    for panel in panels:
        assert all(t["datasource"]["uid"] == datasource["uid"] for t in panel["targets"])
    known = _metric_names()
    for name in re.findall(r"sleepwake_\w+", " ".join(exprs.values())):
        assert re.sub(r"_(total|bucket|count|sum)$", "", name) in known, name
