"""The envelope on the wire: round trip, upcasting, and the four kinds of bad input."""

from __future__ import annotations

import json

import pytest

from events.catalogue import CATALOGUE, PAYLOADS
from events.codec import BadEvent, decode, encode
from events.envelope import derived_id, make_envelope
from events.proof import Ping
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


@pytest.mark.parametrize("reason", sorted(bad_inputs()))
def test_each_bad_input_names_its_reason(reason: str) -> None:
    with pytest.raises(BadEvent) as err:
        decode(bad_inputs()[reason])
    assert err.value.reason == reason


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
