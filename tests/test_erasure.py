"""Erasure end to end: the five services on the real broker, each with a database of its own
(SQLite, then PostgreSQL), in this process.

A person flows through ingest, scoring, routing, reporting and delivery (and out to a webhook
receiver); ``DELETE /v1/people/{email}`` erases them; then every column of every table of
every service's database is searched for their email, names and phone (normalized and as
submitted) and none is found, reporting's figures have not moved, the receiver was told, and
neither a replay of the person's old events nor a rebuild of reporting from the topics
brings anything back. The person is refused at ingest until they consent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.delivery.tests.conftest import Receiver
from services.ingest.auth import create_key
from services.reporting.rebuild import rebuild
from services.routing.tests.support import program, rep, seed, team, territory
from services.scoring import repository as scoring_repository
from shared.cloudevents import header
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.system import load_all
from shared.testing.kafka_tools import eventually, produce_raw, read_topic
from shared.testing.personal_data import find_in_database
from shared.testing.pytest_plugin import (
    DatabaseFactory,
    running_runtime,
    serve_app,
    service_settings,
)
from shared.topics import CATALOG, TopicNames

pytestmark = pytest.mark.kafka

EMAIL = "Zebulon.Quackenbush@Orbital-Widgets.co.uk"
PHONE = "020 7946 0321"
PERSON: dict[str, Any] = {
    "email": EMAIL,
    "first_name": "Zebulon",
    "last_name": "Quackenbush",
    "phone": PHONE,
    "title": "VP Engineering",
    "company": "Orbital Widgets Ltd",
    "industry": "Computer Software",
    "employees": 240,
    "country": "UK",
    "city": "London",
    "postal_code": "EC1A 1BB",
    "source": "web_form",
    "campaign": "q4-webinar",
    "touchpoint_type": "demo_request",
    "utm": {"source": "linkedin", "campaign": "q4-webinar", "term": "zebulon quackenbush"},
    "how_did_you_hear": "Quackenbush & Sons newsletter",
}
OTHER: dict[str, Any] = {
    "email": "ada@analytical-engines.co.uk",
    "first_name": "Ada",
    "country": "UK",
    "campaign": "q4-webinar",
    "touchpoint_type": "content_download",
}
# The person as normalized and as submitted (searched case-insensitively). Each long enough
# not to turn up inside a random hex id ("EC1A" alone once matched a subscription's id).
NEEDLES = (
    EMAIL.lower(), "Zebulon", "Quackenbush", "+442079460321", PHONE, "79460321", "EC1A 1BB",
    "EC1A1BB",
)  # fmt: skip
AS_OF = "2099-01-01T00:00:00Z"  # a fixed moment for the figures that depend on "now"


@dataclass
class Pipeline:
    names: TopicNames
    bootstrap: str
    runtimes: dict[str, ServiceRuntime]
    ingest: httpx.AsyncClient
    reporting: httpx.AsyncClient
    delivery: httpx.AsyncClient
    receiver: Receiver
    databases: dict[str, Database] = field(default_factory=dict)

    def scan(self) -> list[str]:
        return [
            f"{service}: {found}"
            for service, database in self.databases.items()
            for found in find_in_database(database, NEEDLES)
        ]

    async def quiet(self) -> bool:
        """Nothing waits in any outbox, and every consumer has read every topic to its end."""
        for runtime in self.runtimes.values():
            if await asyncio.to_thread(runtime.relay.pending_count):
                return False
        ends = await end_offsets(self.bootstrap, self.names)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            for runtime in self.runtimes.values():
                for consumer in runtime.consumers:
                    group = self.names.group(consumer.name)
                    committed = await admin.list_consumer_group_offsets(group)
                    wanted = {self.names.physical(t) for t in consumer.logical_topics}
                    for tp, end in ends.items():
                        if tp.topic in wanted and end > 0:
                            meta = committed.get(tp)
                            if meta is None or meta.offset < end:
                                return False
        finally:
            await admin.close()
        for runtime in self.runtimes.values():
            if await asyncio.to_thread(runtime.relay.pending_count):
                return False
        return True

    async def settle(self, message: str) -> None:
        """Quiet twice in a row, a moment apart: what one service sent, the others read."""
        for _ in range(2):
            await eventually(self.quiet, timeout=90, interval=0.3, message=message)
            await asyncio.sleep(0.5)

    async def report(self) -> dict[str, Any]:
        response = await self.reporting.get("/v1/report", params={"as_of": AS_OF})
        assert response.status_code == 200, response.text
        figures: dict[str, Any] = response.json()
        return figures


async def end_offsets(bootstrap: str, names: TopicNames) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = []
        for spec in CATALOG:
            topic = names.physical(spec.name)
            found = consumer.partitions_for_topic(topic)
            while not found:
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(topic)
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


def configure_routing(database: Database) -> None:
    seed(
        database,
        territory("gb", "GB"),
        team("uk", territory_ids=["gb"]),
        rep("ana", "uk", name="Ana Rep", email="ana@leadflow.example", crm_user_id="52550153"),
        program("nurture-c", ["C"]),
        program("nurture-d", ["D"]),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def pipeline(
    request: pytest.FixtureRequest,
    database_factory: DatabaseFactory,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> AsyncIterator[Pipeline]:
    backend: str = request.param
    definitions = {definition.name: definition for definition in load_all()}
    databases = {name: database_factory.create(backend, d) for name, d in definitions.items()}
    configure_routing(databases["routing"])
    with databases["ingest"].transaction() as session:
        key = create_key(session, name="erasure-test")
    overrides: dict[str, dict[str, Any]] = {"delivery": {"dispatch_poll_interval_ms": 50}}
    runtimes = {
        name: ServiceRuntime(
            definition,
            service_settings(
                definition,
                database=databases[name],
                topic_names=topic_names,
                bootstrap_servers=kafka_bootstrap_servers,
                **overrides.get(name, {}),
            ),
        )
        for name, definition in definitions.items()
    }
    receiver = Receiver()
    try:
        async with AsyncExitStack() as stack:
            receiver.url = await stack.enter_async_context(serve_app(receiver.app))
            urls = {}
            for name in ("ingest", "reporting", "delivery"):
                urls[name] = await stack.enter_async_context(serve_app(create_app(runtimes[name])))
            for name in ("scoring", "routing"):
                await stack.enter_async_context(running_runtime(runtimes[name]))
            clients = {
                name: await stack.enter_async_context(
                    httpx.AsyncClient(base_url=url, timeout=60, headers={"X-API-Key": key})
                )
                for name, url in urls.items()
            }
            for name in ("ingest", "reporting", "delivery"):  # their consumers are up
                for consumer in runtimes[name].consumers:
                    await asyncio.wait_for(consumer.started.wait(), 60)
            yield Pipeline(
                names=topic_names,
                bootstrap=kafka_bootstrap_servers,
                runtimes=runtimes,
                ingest=clients["ingest"],
                reporting=clients["reporting"],
                delivery=clients["delivery"],
                receiver=receiver,
                databases=databases,
            )
    finally:
        for database in databases.values():
            database_factory.drop(database)


async def replay_old_records(pipeline: Pipeline, lead_id: uuid.UUID) -> int:
    """Publish the person's old leads.ingested and leads.scored records again, under new
    event ids (so no consumer can skip them as already processed): a late or replayed event."""
    replayed = 0
    for logical in ("leads.ingested", "leads.scored"):
        topic = pipeline.names.physical(logical)
        for record in await read_topic(pipeline.bootstrap, topic, count=2, timeout=10):
            if header(record.headers, "ce_subject") != str(lead_id):
                continue
            headers = [
                (key, uuid.uuid4().hex.encode() if key == "ce_id" else value)
                for key, value in record.headers
            ]
            await produce_raw(
                pipeline.bootstrap, topic, record.value, key=record.key, headers=headers
            )
            replayed += 1
    return replayed


async def test_after_erasure_no_service_holds_the_person_and_the_figures_stand(
    pipeline: Pipeline,
) -> None:
    subscribed = await pipeline.delivery.post(
        "/v1/subscriptions",
        json={
            "url": pipeline.receiver.url + "/mautic",
            "event_types": ["leads.ingested", "leads.scored", "leads.routed"],
        },
    )
    assert subscribed.status_code == 201, subscribed.text

    created = await pipeline.ingest.post("/v1/leads", json=PERSON)
    assert created.status_code == 202, created.text
    lead_id = uuid.UUID(created.json()["lead_id"])
    assert (await pipeline.ingest.post("/v1/leads", json=OTHER)).status_code == 202
    converted = await pipeline.ingest.post(
        "/v1/feedback",
        json={
            "lead_id": str(lead_id),
            "status": "converted",
            "opportunity_id": "opp-1",
            "amount": "48000",
            "currency": "EUR",
            "note": "Zebulon Quackenbush wants the quote by Friday",
        },
    )
    assert converted.status_code == 202, converted.text
    await eventually(lambda: len(pipeline.receiver.requests) >= 5, timeout=90, message="deliveries")
    await pipeline.settle("the lead did not go through every service")

    before = await pipeline.report()
    assert (before["volume"]["leads"], before["funnel"]["pipeline"]) == (2, 48000.0)
    held = {line.split(":")[0] for line in pipeline.scan()}
    assert held == {"ingest", "scoring", "routing", "delivery"}  # reporting names no one

    erased = await pipeline.ingest.delete(f"/v1/people/{EMAIL}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["lead_ids"] == [str(lead_id)]

    with contextlib.suppress(AssertionError):  # what is still held is said below
        await eventually(lambda: not pipeline.scan(), timeout=90, interval=0.5)
    await pipeline.settle("the erasure did not go through every service")
    found = pipeline.scan()
    assert found == [], "\n".join(found)
    assert await pipeline.report() == before

    # The receiver that got the person's data was told to erase them too.
    notices = [r for r in pipeline.receiver.requests if r.json()["type"].endswith("erased.v1")]
    assert [n.json()["subject"] for n in notices] == [str(lead_id)]

    # Old records of the person, delivered again (late, or a replay): nothing comes back.
    assert await replay_old_records(pipeline, lead_id) == 2
    await pipeline.settle("the replayed records were not read")
    found = pipeline.scan()
    assert found == [], "\n".join(found)
    assert await pipeline.report() == before

    # Reporting rebuilt from every topic from the start (the topics still hold the person).
    reporting = pipeline.runtimes["reporting"]
    await rebuild(db=reporting.db, bootstrap_servers=pipeline.bootstrap, names=pipeline.names)
    assert find_in_database(pipeline.databases["reporting"], NEEDLES) == []
    assert await pipeline.report() == before

    # Refused at ingest until the person consents again; then a fresh lead flows.
    refused = await pipeline.ingest.post("/v1/leads", json=PERSON)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "email"]
    back = await pipeline.ingest.post(
        "/v1/leads", json={**PERSON, "consent": {"data_processing": True}}
    )
    assert back.status_code == 202, back.text
    fresh = uuid.UUID(back.json()["lead_id"])
    assert fresh != lead_id

    def scored() -> bool:
        with pipeline.databases["scoring"].read() as session:
            return scoring_repository.score(session=session, lead_id=fresh) is not None

    await eventually(scored, timeout=60, message="the fresh lead was not scored")
