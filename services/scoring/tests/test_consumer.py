"""The scoring service on the real broker: leads.ingested and leads.feedback in,
leads.scored out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from services.scoring.models import LeadRecord
from services.scoring.tests.support import rows
from shared import schema_files
from shared.cloudevents import Event, decode
from shared.contracts import LeadScoredV1
from shared.db import Database
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import eventually, produce, read_topic
from shared.testing.pytest_plugin import running_runtime, service_settings
from shared.topics import TopicNames

pytestmark = pytest.mark.kafka


async def test_touchpoints_in_scores_out_and_feedback_closes(
    service_definition: ServiceDefinition,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> None:
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
    )
    lead_id = uuid.uuid4()
    t0 = datetime.now(UTC).replace(microsecond=0)
    first = factories.lead_ingested(
        lead_id=lead_id, touchpoint=factories.touchpoint(type="form_submission", occurred_at=t0)
    )
    second = factories.lead_ingested(
        lead_id=lead_id,
        change="merged",
        merged_on="email",
        touchpoint=factories.touchpoint(type="demo_request", occurred_at=t0),
        touchpoint_count=2,
    )
    events = [Event(data=p, source="/leadflow/ingest", time=t0) for p in (first, second)]
    async with running_runtime(ServiceRuntime(service_definition, settings)):
        await produce(kafka_bootstrap_servers, topic_names.physical("leads.ingested"), events)
        records = await read_topic(
            kafka_bootstrap_servers, topic_names.physical("leads.scored"), count=2
        )
        assert len(records) == 2
        feedback = factories.lead_feedback(lead_id=lead_id, status="converted")
        await produce(
            kafka_bootstrap_servers,
            topic_names.physical("leads.feedback"),
            [Event(data=feedback, source="/leadflow/ingest")],
        )
        await eventually(lambda: rows(database, LeadRecord)[0].closed, message="not closed")

    schema = schema_files.load("leadflow.lead.scored.v1")
    scored = []
    for record in records:
        jsonschema.validate(json.loads(record.value), schema)
        assert record.key == str(lead_id).encode()
        event = decode(record.headers, record.value)
        assert event.source == "/leadflow/scoring"
        assert event.time == t0
        assert isinstance(event.data, LeadScoredV1)
        scored.append(event.data)
    assert [(s.grade, s.previous_grade) for s in scored] == [("B", None), ("A", "B")]
    assert scored[1].touchpoint_id == second.touchpoint.touchpoint_id
    assert scored[1].lead == second.lead
    assert any(reason.rule == "demo_request" for reason in scored[1].reasons)
    assert scored[1].scored_at < t0 + timedelta(seconds=1)
