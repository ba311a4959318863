"""The contracts, their JSON Schemas and the CloudEvents codec, with no broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import jsonschema
import pytest
from pydantic import ValidationError

from shared import schema_files
from shared.cloudevents import Event, MalformedEvent, decode, format_time, header
from shared.contracts import (
    PAYLOAD_TYPES,
    EventPayload,
    LeadFeedbackV1,
    LeadIngestedV1,
    UnknownEventType,
    payload_class,
)
from shared.testing import factories
from shared.topics import CATALOG, TopicNames, dlq_of, topic_for

SAMPLES: dict[str, Callable[[], EventPayload]] = {
    "leadflow.lead.ingested.v1": factories.lead_ingested,
    "leadflow.lead.scored.v1": factories.lead_scored,
    "leadflow.lead.routed.v1": factories.lead_routed,
    "leadflow.lead.sla.v1": factories.lead_sla,
    "leadflow.lead.feedback.v1": lambda: factories.lead_feedback(
        status="converted",
        opportunity_id="006Dn00000A1b2C",
        amount=Decimal("48000.00"),
        currency="EUR",
    ),
    "leadflow.lead.erased.v1": factories.lead_erased,
}


def test_schema_files_match_the_models() -> None:
    assert schema_files.drifted() == [], "run `leadflow schemas export` and commit the files"


def test_every_payload_type_has_a_sample_and_a_topic() -> None:
    assert set(SAMPLES) == {payload.cloudevents_type() for payload in PAYLOAD_TYPES}
    for payload in PAYLOAD_TYPES:
        assert payload in topic_for(payload).payloads


@pytest.mark.parametrize("cloudevents_type", sorted(SAMPLES))
def test_payloads_validate_against_their_exported_schema(cloudevents_type: str) -> None:
    payload = SAMPLES[cloudevents_type]()
    document = json.loads(payload.model_dump_json())
    schema = schema_files.load(cloudevents_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_what_the_model_rejects() -> None:
    schema = schema_files.load("leadflow.lead.ingested.v1")
    document = json.loads(factories.lead_ingested().model_dump_json())
    document["lead"]["phone"] = "0044 20 7946 0958"  # not E.164
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    del document["touchpoint"]
    with pytest.raises(jsonschema.ValidationError, match="touchpoint"):
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def test_rejection_needs_a_reason_and_only_rejection_has_one() -> None:
    with pytest.raises(ValidationError, match="rejection_reason is required"):
        factories.lead_feedback(status="rejected")
    with pytest.raises(ValidationError, match="only allowed"):
        factories.lead_feedback(status="accepted", rejection_reason="no_need")
    assert factories.lead_feedback(status="rejected", rejection_reason="no_timeframe")
    with pytest.raises(ValidationError, match="rejection_reason"):
        factories.lead_feedback(status="rejected", rejection_reason="too_expensive")


def test_readers_ignore_fields_added_later_in_the_same_version() -> None:
    document = json.loads(factories.lead_feedback().model_dump_json())
    document["added_in_a_later_release"] = {"x": 1}
    assert LeadFeedbackV1.model_validate(document).status == "accepted"


def test_timestamps_must_carry_an_offset() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        factories.lead_feedback(occurred_at=datetime(2026, 1, 1, 12, 0))


def test_unknown_event_type_is_named() -> None:
    with pytest.raises(UnknownEventType, match=r"leadflow\.lead\.ingested\.v9"):
        payload_class("leadflow.lead.ingested.v9")


def test_topic_catalog_names() -> None:
    assert [spec.name for spec in CATALOG] == [
        "leads.ingested",
        "leads.scored",
        "leads.routed",
        "leads.sla",
        "leads.feedback",
        "leads.erased",
    ]
    names = TopicNames("t123")
    assert names.physical("leads.scored") == "t123.leads.scored"
    assert names.logical("t123.leads.scored") == "leads.scored"
    assert names.physical(dlq_of("leads.scored")) == "t123.leads.scored.dlq"
    assert TopicNames().physical("leads.scored") == "leads.scored"
    with pytest.raises(ValueError, match="namespace"):
        names.logical("other.leads.scored")


# ---------------------------------------------------------------- CloudEvents binary mode


def test_event_round_trips_through_kafka_headers_and_value() -> None:
    lead_id = uuid.uuid4()
    payload = factories.lead_ingested(lead_id=lead_id)
    moment = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)
    event = Event(data=payload, source="/leadflow/ingest", time=moment)
    headers = event.headers()
    assert header(headers, "ce_specversion") == "1.0"
    assert header(headers, "ce_type") == "leadflow.lead.ingested.v1"
    assert header(headers, "ce_subject") == str(lead_id)
    assert header(headers, "ce_time") == "2026-11-23T09:30:15.123456Z"
    assert header(headers, "content-type") == "application/json"
    assert event.key == str(lead_id).encode()
    decoded = decode(headers, event.value())
    assert decoded == event
    assert isinstance(decoded.data, LeadIngestedV1)


@pytest.mark.parametrize("cloudevents_type", sorted(SAMPLES))
@pytest.mark.parametrize(
    ("source", "subject", "moment"),
    [
        ("/leadflow/ingest", "", datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)),
        # What a JSON writer must escape, and a time given in another zone.
        (
            '/leadflow/"quoted"\\back\nline',
            "Zoë 株式会社 \u2028 \x00",
            datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        ),
    ],
)
def test_headers_as_the_outbox_stores_them_read_back_as_the_headers(
    cloudevents_type: str, source: str, subject: str, moment: datetime
) -> None:
    event = Event(data=SAMPLES[cloudevents_type](), source=source, subject=subject, time=moment)
    stored = json.loads(event.headers_json())
    assert [(name, value.encode()) for name, value in stored] == event.headers()
    assert header(event.headers(), "ce_time") == format_time(moment)
    assert format_time(moment).endswith("Z")
    assert datetime.fromisoformat(format_time(moment)) == moment


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_id"], v), "ce_id is missing"),
        (lambda h, v: ([x for x in h if x[0] != "ce_type"], v), "ce_type is missing"),
        (lambda h, v: ([("ce_specversion", b"0.3"), *h[1:]], v), "not 1.0"),
        (lambda h, v: ([*h[:3], ("ce_type", b"leadflow.lead.x.v1"), *h[4:]], v), "unknown event"),
        (lambda h, v: ([*h[:4], ("ce_time", b"yesterday"), *h[5:]], v), "RFC 3339"),
        (lambda h, v: (h, b"{not json"), "does not match"),
        (lambda h, v: (h, b'{"lead_id": "x"}'), "does not match"),
        (lambda h, v: (h, None), "no value"),
        (lambda h, v: ([*h[:-1], ("content-type", b"application/avro")], v), "content-type"),
    ],
)
def test_malformed_records_say_why(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    event = Event(data=factories.lead_ingested(), source="/test")
    headers, value = mutate(event.headers(), event.value())
    with pytest.raises(MalformedEvent, match=message):
        decode(headers, value)


def test_naive_event_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Event(data=factories.lead_ingested(), source="/test", time=datetime(2026, 1, 1))
