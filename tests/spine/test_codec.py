"""The envelope on the wire: round trip, upcasting, and the four kinds of bad input."""

from __future__ import annotations

import json

import pytest

from events.catalogue import CATALOGUE, PAYLOADS
from events.codec import BadEvent, decode, encode
from events.envelope import derived_id, make_envelope
from events.proof import Ping
from events.serving import QueryReceived, ResponseGenerated
from events.topology import topic_of
from tests.spine.helpers import bad_inputs, ping


def test_round_trip_is_identity() -> None:
    event = ping("r1", 2, 5, cycle=3)
    assert decode(encode(event)) == event
    assert event.correlationid == "cycle-3"


def test_envelopes_are_frozen_and_closed() -> None:
    event = ping("r1")
    with pytest.raises(Exception, match="frozen"):
        event.subject = "other"  # type: ignore[misc]
    doc = json.loads(encode(event))
    doc["colour"] = "red"
    with pytest.raises(BadEvent) as err:
        decode(json.dumps(doc).encode())
    assert err.value.reason == "invalid_payload" and "colour" in err.value.detail


@pytest.mark.parametrize(("reason", "raw"), bad_inputs())
def test_each_bad_input_names_its_reason(reason: str, raw: bytes) -> None:
    with pytest.raises(BadEvent) as err:
        decode(raw, topic=topic_of("pinger"))
    assert err.value.reason == reason


@pytest.mark.parametrize("field", ["confidence", "cost_norm"])
def test_schema_valid_values_a_policy_cannot_use_are_rejected(field: str) -> None:
    doc = json.loads(encode(make_envelope(ResponseGenerated(
        query_id="q", cycle=0, model_id="a", tier=0, answer="1", confidence=0.5,
        prompt_tokens=1, answer_tokens=1, cost_flops=1.0, cost_norm=0.1), source="t",
        subject="q")))
    for bad in (float("nan"), float("inf")):
        doc["data"][field] = bad  # json.dumps writes NaN / Infinity, json.loads reads them
        with pytest.raises(BadEvent) as err:
            decode(json.dumps(doc).encode(), topic=topic_of("worker"))
        assert err.value.reason == "invalid_payload"
    short = json.loads(encode(make_envelope(QueryReceived(
        query_id="q", cycle=0, text="t"), source="t", subject="q")))
    short["data"]["embedding"] = "AAAA"
    with pytest.raises(BadEvent) as err:
        decode(json.dumps(short).encode(), topic=topic_of("gateway"))
    assert err.value.reason == "invalid_payload" and "embedding" in err.value.detail


def test_v1_ping_is_upcast_to_v2() -> None:
    doc = json.loads(encode(ping("r1", 1, 4)))
    doc["schemaversion"] = 1
    del doc["data"]["rally"]
    event = decode(json.dumps(doc).encode())
    assert isinstance(event.data, Ping)
    assert event.data.rally == "legacy" and event.schemaversion == Ping.VERSION


def test_derived_ids_depend_on_source_cause_and_index() -> None:
    cause = ping("r1")
    child = make_envelope(Ping(rally="r1", n=1, limit=3), source="a", subject="r1", cause=cause)
    assert child.id == derived_id("a", cause.id, 0)
    assert child.causationid == cause.id
    assert len({derived_id("a", cause.id, 0), derived_id("a", cause.id, 1),
                derived_id("b", cause.id, 0)}) == 3


def test_catalogue_has_every_design_event_with_described_fields() -> None:
    design = {"QueryReceived", "QueryRouted", "ResponseGenerated", "Escalated", "Accepted",
              "ResponseGraded", "GapIndexUpdated", "EnvelopeOpened", "EnvelopeClosed",
              "SleepStarted", "TrainingProgress", "TrainingCompleted", "TrainingFailed",
              "CanaryStarted", "TrafficShifted", "Promoted", "RolledBack"}
    assert design <= set(CATALOGUE)
    for payload in PAYLOADS:
        assert payload.__doc__, f"{payload.TYPE} needs a docstring (it feeds the schema docs)"
        assert payload.model_config.get("frozen") and payload.model_config.get("extra") == "forbid"
