"""The consumer of leads.scored on the real broker: a scored lead comes in, leads.routed
goes out through the outbox, and the decision is stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import jsonschema
import pytest

from services.routing.service import build_definition
from services.routing.tests.support import START, FakeClock, assignments, rep, scored, standard_team
from shared import schema_files
from shared.cloudevents import Event, decode
from shared.contracts import LeadRoutedV1
from shared.db import Database
from shared.service import ServiceRuntime
from shared.testing.kafka_tools import eventually, produce, read_topic
from shared.testing.pytest_plugin import running_runtime, service_settings
from shared.topics import TopicNames

pytestmark = pytest.mark.kafka


@pytest.fixture
async def runtime(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> AsyncIterator[ServiceRuntime]:
    definition = build_definition(clock=FakeClock(START))
    settings = service_settings(
        definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
        sla_poll_interval_ms=50,
    )
    runtime = ServiceRuntime(definition, settings)
    async with running_runtime(runtime):
        yield runtime


async def test_scored_leads_are_routed_and_published(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    payloads = [scored("A"), scored("D")]
    await produce(
        kafka_bootstrap_servers,
        runtime.names.physical("leads.scored"),
        [Event(data=payload, source="/leadflow/scoring") for payload in payloads],
    )
    records = await read_topic(
        kafka_bootstrap_servers, runtime.names.physical("leads.routed"), count=2
    )
    assert len(records) == 2
    by_lead = {}
    for record in records:
        jsonschema.validate(json.loads(record.value), schema_files.load(LeadRoutedV1.schema_name()))
        event = decode(record.headers, record.value)
        assert isinstance(event.data, LeadRoutedV1)
        assert record.key == str(event.data.lead_id).encode()
        assert event.source == "/leadflow/routing"
        by_lead[event.data.lead_id] = event.data
    a_lead, d_lead = (by_lead[p.lead_id] for p in payloads)
    assert (a_lead.outcome, a_lead.rule, a_lead.routed_at) == ("assigned", "round_robin", START)
    assert (d_lead.outcome, d_lead.program_id) == ("nurture", "nurture-d")
    [stored] = assignments(database, payloads[0].lead_id)
    assert stored.id == a_lead.assignment_id
    await eventually(lambda: runtime.relay.pending_count() == 0)


async def test_feedback_that_comes_before_its_assignment_is_applied_over_the_broker(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    from services.routing import repository
    from shared.contracts import LeadSlaV1
    from shared.testing import factories

    standard_team(database, rep("ana", "dach"))
    lead = scored("A")
    contacted = factories.lead_feedback(
        lead_id=lead.lead_id, status="contacted", occurred_at=START, source="hubspot"
    )
    await produce(
        kafka_bootstrap_servers,
        runtime.names.physical("leads.feedback"),
        [Event(data=contacted, source="/leadflow/ingest")],
    )

    def kept() -> bool:
        with database.read() as session:
            return len(repository.pending_feedback(session, lead_id=lead.lead_id)) == 1

    await eventually(kept, message="feedback not kept")
    await produce(
        kafka_bootstrap_servers,
        runtime.names.physical("leads.scored"),
        [Event(data=lead, source="/leadflow/scoring")],
    )
    [record] = await read_topic(
        kafka_bootstrap_servers, runtime.names.physical("leads.sla"), count=1
    )
    jsonschema.validate(json.loads(record.value), schema_files.load(LeadSlaV1.schema_name()))
    met = decode(record.headers, record.value).data
    assert isinstance(met, LeadSlaV1)
    assert (met.status, met.rep_id, met.lead_id) == ("met", "ana", lead.lead_id)


async def test_a_score_from_the_past_is_routed_as_of_its_time(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    """A backfill: two leads graded a month before the clock. Each is decided, and its clock
    started, as of its score's time. The one whose contact (kept, it came first) was within
    its deadline meets it; the other's deadline has long passed, so the SLA worker breaches
    it on its next poll and re-assigns it now, as it does for a deadline passed while down."""
    from shared.contracts import LeadSlaV1
    from shared.testing import factories

    now = START + timedelta(days=30)
    definition = build_definition(clock=FakeClock(now))
    settings = service_settings(
        definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
        sla_poll_interval_ms=50,
    )
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    followed, forgotten = scored("A"), scored("A", scored_at=START + timedelta(minutes=1))
    contacted = factories.lead_feedback(
        lead_id=followed.lead_id,
        status="contacted",
        occurred_at=START + timedelta(hours=2),
        source="hubspot",
    )
    runtime = ServiceRuntime(definition, settings)
    async with running_runtime(runtime):
        await produce(
            kafka_bootstrap_servers,
            runtime.names.physical("leads.feedback"),
            [Event(data=contacted, source="/leadflow/ingest")],
        )
        await produce(
            kafka_bootstrap_servers,
            runtime.names.physical("leads.scored"),
            [Event(data=lead, source="/leadflow/scoring") for lead in (followed, forgotten)],
        )
        routed = await read_topic(
            kafka_bootstrap_servers, runtime.names.physical("leads.routed"), count=3
        )
        clocks = await read_topic(
            kafka_bootstrap_servers, runtime.names.physical("leads.sla"), count=3
        )
    decisions = [decode(r.headers, r.value).data for r in routed]
    assert all(isinstance(d, LeadRoutedV1) for d in decisions)
    first = {d.lead_id: d for d in reversed(decisions) if isinstance(d, LeadRoutedV1)}
    assert first[followed.lead_id].routed_at == START
    assert first[followed.lead_id].sla_due_at == START + timedelta(days=1)
    assert first[forgotten.lead_id].routed_at == START + timedelta(minutes=1)
    [again] = [d for d in decisions if isinstance(d, LeadRoutedV1) and d.reassignment_of]
    assert (again.lead_id, again.routed_at, again.attempt) == (forgotten.lead_id, now, 2)
    statuses = sorted(
        (str(event.lead_id == followed.lead_id), event.status)
        for event in (decode(r.headers, r.value).data for r in clocks)
        if isinstance(event, LeadSlaV1)
    )
    assert statuses == [("False", "breached"), ("False", "reassigned"), ("True", "met")]
