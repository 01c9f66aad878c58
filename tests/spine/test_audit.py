"""The audit re-runs policies over the archive and catches a decision that differs."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config import SystemConfig
from cli.audit import AuditError, audit
from events.codec import encode
from events.envelope import Payload, derived_id, make_envelope
from events.proof import Ping, Pong
from events.serving import QueryReceived, RunConfigured
from projections.rows import Position, row
from projections.store import Store
from tests.spine.helpers import ping


def _log(tamper: bool) -> list:
    first = ping("r", 0, 2)
    answer_n = 1 if tamper else 0  # a tampered ponger answers the wrong ping number
    pong = make_envelope(Pong(rally="r", n=answer_n, limit=2), source="ponger/x", subject="r",
                         id=derived_id("ponger", first.id, 0), cause=first)
    again = make_envelope(Ping(rally="r", n=1, limit=2), source="pinger/x", subject="r",
                          id=derived_id("pinger", pong.id, 0), cause=pong)
    last = make_envelope(Pong(rally="r", n=1, limit=2), source="ponger/x", subject="r",
                         id=derived_id("ponger", again.id, 0), cause=again)
    return [(first, "sw.pinger.v1"), (pong, "sw.ponger.v1"), (again, "sw.pinger.v1"),
            (last, "sw.ponger.v1")]


def _store(path: Path, tamper: bool) -> Path:
    store = Store(path)
    store.apply([row(e, Position(t, 0, i), encode(e)) for i, (e, t) in enumerate(_log(tamper))])
    store.close()
    return path


def test_honest_log_audits_clean(tmp_path: Path) -> None:
    report = audit(_store(tmp_path / "ok.duckdb", tamper=False), config=SystemConfig())
    assert report.ok, report.divergences
    assert report.checked["pinger"] == 2 and report.checked["ponger"] == 2


def test_tampered_decision_is_reported(tmp_path: Path) -> None:
    report = audit(_store(tmp_path / "bad.duckdb", tamper=True), config=SystemConfig())
    by_agent = {d.agent: d.problem for d in report.divergences}
    assert by_agent["ponger"].startswith("emitted ('Pong', 'r', {'rally': 'r', 'n': 1,")
    assert by_agent["pinger"] == "emitted, policy would not"  # it followed the forged pong


def test_the_audit_takes_the_configuration_from_the_log_or_fails_loudly(tmp_path: Path) -> None:
    assert audit(_store(tmp_path / "bare.duckdb", tamper=False)).ok  # served no query
    served = _gateway_log(tmp_path / "served.duckdb", QueryReceived(query_id="q", cycle=0,
                                                                    text="t"))
    with pytest.raises(AuditError, match="no RunConfigured"):
        audit(served)
    gone = SystemConfig(zoo=tmp_path / "no-such-zoo")
    logged = _gateway_log(tmp_path / "gone.duckdb", RunConfigured(config=gone.model_dump_json()))
    with pytest.raises(AuditError, match="cannot rebuild"):
        audit(logged)


def _gateway_log(path: Path, data: Payload) -> Path:
    """A projection holding one event of the traffic source."""
    event = make_envelope(data, source="gateway/x", subject="s")
    store = Store(path)
    store.apply([row(event, Position("sw.gateway.v1", 0, 0), encode(event))])
    store.close()
    return path
