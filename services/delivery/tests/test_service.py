"""The whole service on the real broker: events from the public topics become signed webhook
deliveries (filtered, in order, once) and CRM write-backs, through the real consumer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook

from services.delivery import repository
from services.delivery.service import DEFINITION
from services.delivery.tests.conftest import FakeClock, MiddleRandom, Receiver
from services.delivery.tests.fake_crm import HUBSPOT_TOKEN, Change, FakeCrm
from shared.cloudevents import Event
from shared.contracts import EventPayload, RepRef
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import eventually, produce
from shared.testing.pytest_plugin import serve_app, service_settings
from shared.topics import TopicNames, topic_for

pytestmark = pytest.mark.kafka


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm(contacts={"651"})
    async with serve_app(fake.app()) as url:
        fake.url = url
        yield fake


async def test_events_become_signed_ordered_deliveries_and_a_crm_owner(
    *,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
    receiver: Receiver,
    crm: FakeCrm,
    clock: FakeClock,
) -> None:
    settings = service_settings(
        DEFINITION,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
        dispatch_poll_interval_ms=20,
        hubspot_access_token=SecretStr(HUBSPOT_TOKEN),
        hubspot_base_url=crm.url,
    )
    runtime = ServiceRuntime(DEFINITION, settings)
    runtime.state.update(clock=clock, random=MiddleRandom())

    async def send(payload: EventPayload, *, event: Event[EventPayload] | None = None) -> None:
        event = event or Event(data=payload, source="/leadflow/test")
        topic = topic_names.physical(topic_for(type(payload)).name)
        await produce(kafka_bootstrap_servers, topic, [event])

    def view_grade(lead_id: uuid.UUID) -> str | None:
        with runtime.db.read() as session:
            view = repository.lead_view(session, lead_id)
            return view.grade if view else "none"

    async with (
        serve_app(create_app(runtime)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        graded = await api.post(
            "/v1/subscriptions",
            json={
                "url": receiver.url + "/mautic",
                "event_types": ["leads.ingested", "leads.scored", "leads.routed", "leads.feedback"],
                "filters": {"grades": ["A"]},
            },
        )
        assert graded.status_code == 201
        secret = graded.json()["secret"]
        elsewhere = await api.post(
            "/v1/subscriptions",
            json={
                "url": receiver.url + "/zapier",
                "event_types": ["leads.routed"],
                "filters": {"campaigns": ["autumn"]},
            },
        )
        assert elsewhere.status_code == 201

        lead, other = uuid.uuid4(), uuid.uuid4()
        snapshot = factories.lead_snapshot(campaign="spring", crm_ids={"hubspot": "651"})
        await send(factories.lead_ingested(lead_id=lead, lead=snapshot))
        await eventually(lambda: view_grade(lead) is None, message="ingested not consumed")
        await send(factories.lead_scored(lead_id=lead, grade="A", lead=snapshot))
        await eventually(lambda: view_grade(lead) == "A", message="scored not consumed")
        await send(
            factories.lead_routed(
                lead_id=lead, grade="A", rep=RepRef(rep_id="r1", crm_user_id="52550153")
            )
        )
        feedback = Event(data=factories.lead_feedback(lead_id=lead), source="/leadflow/test")
        await send(feedback.data, event=feedback)
        await send(feedback.data, event=feedback)  # a redelivery: delivered once all the same
        # After the redelivery on the same partition: once this is delivered, the copy was read.
        await send(factories.lead_feedback(lead_id=lead, status="converted"))
        await send(factories.lead_scored(lead_id=other, grade="B"))

        await eventually(lambda: len(receiver.requests) >= 4, timeout=30)
        await eventually(lambda: crm.changes, timeout=30)
        await eventually(lambda: view_grade(other) == "B", message="other lead not consumed")
        deliveries: list[dict[str, Any]] = []

        async def settled() -> bool:
            # The receiver has the 4th request before the dispatcher records its answer.
            path = f"/v1/subscriptions/{graded.json()['id']}/deliveries"
            deliveries[:] = (await api.get(path)).json()
            return all(d["status"] != "pending" for d in deliveries)

        await eventually(settled, timeout=30, message="deliveries not settled")

    assert [d["status"] for d in deliveries] == ["delivered"] * 4
    types = [r.json()["type"] for r in receiver.requests]
    assert types == [
        "leadflow.lead.scored.v1",  # the ingested event came before the lead had a grade
        "leadflow.lead.routed.v1",
        "leadflow.lead.feedback.v1",  # graded A by the lead's view
        "leadflow.lead.feedback.v1",
    ]
    assert [r.json()["data"]["status"] for r in receiver.requests[2:]] == ["accepted", "converted"]
    assert {r.path for r in receiver.requests} == {"/mautic"}
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)
    assert receiver.requests[2].json()["id"] == feedback.id
    assert crm.changes == [Change("hubspot", "651", "52550153")]
    assert crm.violations == []
