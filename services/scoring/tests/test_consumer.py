"""The scoring service on the real broker: leads.ingested and leads.feedback in,
leads.scored out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jsonschema
import pytest

from services.scoring.models import LeadRecord
from services.scoring.tests.support import rows
from services.scoring.tests.test_api import STRICT
from shared import schema_files
from shared.cloudevents import Event, decode
from shared.contracts import LeadScoredV1
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import eventually, produce, read_topic
from shared.testing.pytest_plugin import running_runtime, serve_app, service_settings
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


async def test_activation_rescores_over_the_broker_and_publishes_only_changed_grades(
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
        rescore_batch_size=2,
    )
    runtime = ServiceRuntime(service_definition, settings)
    t0 = datetime.now(UTC).replace(microsecond=0)
    seniorities = {"ceo": "c_level", "vp": "vp", "director": "director"}
    ids = {name: uuid.uuid4() for name in seniorities}
    events = [
        Event(
            data=factories.lead_ingested(
                lead_id=ids[name],
                lead=factories.lead_snapshot(seniority=seniority, created_at=t0),
                touchpoint=factories.touchpoint(type="form_submission", occurred_at=t0),
            ),
            source="/leadflow/ingest",
            time=t0,
        )
        for name, seniority in seniorities.items()
    ]
    scored_topic = topic_names.physical("leads.scored")
    async with (
        serve_app(create_app(runtime)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        await eventually(lambda: all(c.started.is_set() for c in runtime.consumers))
        await produce(kafka_bootstrap_servers, topic_names.physical("leads.ingested"), events)
        first = await read_topic(kafka_bootstrap_servers, scored_topic, count=3)
        assert len(first) == 3
        created = await client.post(
            "/v1/rulebooks", content=STRICT, headers={"content-type": "application/yaml"}
        )
        assert created.status_code == 201
        activated = await client.post(f"/v1/rulebooks/{created.json()['version']}:activate")
        assert activated.status_code == 202

        async def finished() -> bool:
            detail = (await client.get("/v1/rulebooks/2")).json()
            return bool(detail["rescores"]) and detail["rescores"][0]["status"] == "done"

        await eventually(finished, message="re-scoring did not finish")
        records = await read_topic(kafka_bootstrap_servers, scored_topic, count=5)
        # Nothing more comes: the CEO's grade did not change.
        assert (
            len(await read_topic(kafka_bootstrap_servers, scored_topic, count=6, timeout=1.5)) == 5
        )
        ceo = (await client.get(f"/v1/leads/{ids['ceo']}/score")).json()
        assert (ceo["grade"], ceo["rulebook_version"]) == ("B", 2)

    schema = schema_files.load("leadflow.lead.scored.v1")
    for record in records:
        jsonschema.validate(json.loads(record.value), schema)
    scored = [decode(r.headers, r.value).data for r in records]
    assert all(isinstance(e, LeadScoredV1) for e in scored)
    changed = [e for e in scored if isinstance(e, LeadScoredV1) and e.trigger != "touchpoint"]
    assert sorted((str(e.lead_id), e.grade, e.previous_grade) for e in changed) == sorted(
        [(str(ids["vp"]), "D", "B"), (str(ids["director"]), "D", "B")]
    )
    assert {(e.trigger, e.rulebook_version) for e in changed} == {("rulebook_activated", 2)}
