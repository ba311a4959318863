"""SLA timers on the real broker: a warning from one process, then a restart in the middle
of the timer, and the breach and re-assignment from the next process."""

from __future__ import annotations

import json
from datetime import timedelta

import jsonschema
import pytest

from services.routing.service import build_definition
from services.routing.tests.support import START, FakeClock, rep, scored, standard_team
from shared import schema_files
from shared.cloudevents import Event, decode
from shared.contracts import EventPayload, LeadRoutedV1, LeadSlaV1
from shared.db import Database
from shared.service import ServiceRuntime
from shared.testing.kafka_tools import eventually, produce, read_topic
from shared.testing.pytest_plugin import running_runtime, service_settings
from shared.topics import TopicNames

pytestmark = pytest.mark.kafka


async def events_on(bootstrap: str, topic: str, count: int) -> list[EventPayload]:
    records = await read_topic(bootstrap, topic, count=count, timeout=30)
    events = []
    for record in records:
        event = decode(record.headers, record.value)
        jsonschema.validate(
            json.loads(record.value), schema_files.load(type(event.data).schema_name())
        )
        events.append(event.data)
    return events


async def test_a_breach_after_a_restart_reassigns_over_the_broker(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    clock = FakeClock(START)
    definition = build_definition(clock=clock)

    def runtime() -> ServiceRuntime:
        settings = service_settings(
            definition,
            database=database,
            topic_names=topic_names,
            bootstrap_servers=kafka_bootstrap_servers,
            sla_poll_interval_ms=50,
        )
        return ServiceRuntime(definition, settings)

    routed_topic = topic_names.physical("leads.routed")
    sla_topic = topic_names.physical("leads.sla")
    lead = scored("A")
    first = runtime()
    async with running_runtime(first):
        await produce(
            kafka_bootstrap_servers,
            topic_names.physical("leads.scored"),
            [Event(data=lead, source="/leadflow/scoring")],
        )
        [assigned] = await events_on(kafka_bootstrap_servers, routed_topic, 1)
        assert isinstance(assigned, LeadRoutedV1)
        assert assigned.rep is not None
        assert assigned.rep.rep_id == "ana"
        assert assigned.sla_due_at == START + timedelta(days=1)
        clock.set(START + timedelta(hours=7))  # past the warning, before the deadline
        [warning] = await events_on(kafka_bootstrap_servers, sla_topic, 1)
        assert isinstance(warning, LeadSlaV1)
        assert (warning.status, warning.rep_id) == ("warning", "ana")
    # Down while the deadline passes.
    clock.set(START + timedelta(days=1, hours=1))
    second = runtime()
    async with running_runtime(second):
        sla = await events_on(kafka_bootstrap_servers, sla_topic, 3)
        routed = await events_on(kafka_bootstrap_servers, routed_topic, 2)
        await eventually(lambda: second.relay.pending_count() == 0)
    assert [(e.status, e.rep_id) for e in sla if isinstance(e, LeadSlaV1)] == [
        ("warning", "ana"),
        ("breached", "ana"),
        ("reassigned", "ana"),
    ]
    reassigned = routed[-1]
    assert isinstance(reassigned, LeadRoutedV1)
    assert reassigned.rep is not None
    assert (reassigned.rep.rep_id, reassigned.reassignment_of, reassigned.attempt) == (
        "ben",
        assigned.assignment_id,
        2,
    )
    assert reassigned.routed_at == clock()
