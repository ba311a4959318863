"""leads.erased on both databases, with the real dispatcher and a receiver on 127.0.0.1:
waiting deliveries and write-backs are cancelled, the log keeps no data of the person, the
receivers that got something of the lead (and the subscribers of leads.erased) are told, and
nothing of the lead goes out again."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from services.delivery import repository
from services.delivery.dispatcher import dispatch_webhooks
from services.delivery.models import CrmWriteback, Delivery
from services.delivery.tests.conftest import (
    Answer,
    FakeClock,
    Received,
    Receiver,
    consume,
    new_lead,
    running,
)
from services.delivery.tests.test_dispatch import deliveries, settle_idle, subscribe
from shared.contracts import RepRef
from shared.service import ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import eventually
from shared.testing.personal_data import find_in_database

EMAIL = "zebulon.quackenbush@orbital-widgets.co.uk"
NEEDLES = (EMAIL, "Zebulon", "Quackenbush", "+442079460321")
ERASED = "leadflow.lead.erased.v1"


async def test_an_erased_lead_is_cancelled_scrubbed_and_announced(  # noqa: PLR0915
    runtime: ServiceRuntime, receiver: Receiver, clock: FakeClock
) -> None:
    marketing, _ = subscribe(runtime, receiver.url + "/mautic", ("leads.ingested", "leads.scored"))
    erasures, _ = subscribe(runtime, receiver.url + "/privacy", ("leads.erased",))
    hot_only, _ = subscribe(runtime, receiver.url + "/hot", ("leads.routed",), grades=["A"])

    def answer(request: Received) -> Answer | None:
        event = request.json()
        echo = json.dumps(event["data"].get("lead", {})).encode()  # receivers echo what they got
        if event["type"] == "leadflow.lead.scored.v1":  # keeps failing: a retry waits
            return Answer(500, body=echo)
        return Answer(200, body=echo)

    receiver.rule = answer
    lead, other = new_lead(), new_lead()
    snapshot = factories.lead_snapshot(
        email=EMAIL,
        first_name="Zebulon",
        last_name="Quackenbush",
        phone=NEEDLES[3],
        crm_ids={"hubspot": "651"},
    )
    consume(runtime, factories.lead_ingested(lead_id=lead, lead=snapshot))
    consume(runtime, factories.lead_scored(lead_id=lead, grade="B", lead=snapshot))
    rep = RepRef(rep_id="ana", crm_user_id="52550153")
    consume(runtime, factories.lead_routed(lead_id=lead, grade="B", rep=rep))  # no CRM set up
    consume(runtime, factories.lead_ingested(lead_id=other))
    async with running(runtime, dispatch_webhooks):
        await eventually(lambda: len(receiver.requests) >= 3, timeout=30)
        await settle_idle(runtime)
    assert find_in_database(runtime.db, NEEDLES)

    erased = factories.lead_erased(lead_id=lead)
    consume(runtime, erased)

    found = find_in_database(runtime.db, NEEDLES)
    assert found == [], "\n".join(map(str, found))
    ingested, scored = [d for d in deliveries(runtime, marketing) if d.lead_id == lead][:2]
    assert (ingested.status, scored.status) == ("delivered", "cancelled")
    assert json.loads(ingested.body)["data"] == {"lead_id": str(lead)}
    assert json.loads(ingested.body)["type"] == "leadflow.lead.ingested.v1"  # the log stays
    with runtime.db.read() as session:
        [writeback] = session.execute(select(CrmWriteback)).scalars().all()
        assert (writeback.status, writeback.record_id) == ("cancelled", "")
        view = repository.lead_view(session, lead)
        assert view is not None
        assert (view.grade, dict(view.crm_ids)) == ("B", {})
        log = repository.delivery_attempts(session, ingested.id or 0)
        assert [a.response_excerpt for a in log] == [None]
        assert not repository.replayable(session, ingested)

    # Told: the subscription that got the person's data, and the one that asked; not the
    # one that never got anything of the lead.
    async with running(runtime, dispatch_webhooks):
        await eventually(lambda: len(told(receiver)) == 2, timeout=30)
        await settle_idle(runtime)
    assert sorted(request.path for request in told(receiver)) == ["/mautic", "/privacy"]
    assert {request.json()["data"]["erasure_id"] for request in told(receiver)} == {
        str(erased.erasure_id)
    }
    assert deliveries(runtime, hot_only) == []
    assert [r.json()["type"] for r in receiver.requests if r.path == "/mautic"].count(
        "leadflow.lead.scored.v1"
    ) == 1  # the cancelled retry was never sent again
    with runtime.db.read() as session:
        notices = deliveries(runtime, erasures)
        assert [(d.event_type, d.status) for d in notices] == [(ERASED, "delivered")]
        assert repository.replayable(session, notices[0])

    # Late, or replayed: nothing of the lead goes out again.
    before = len(_all_deliveries(runtime))
    consume(runtime, factories.lead_scored(lead_id=lead, grade="A", lead=snapshot))
    consume(runtime, factories.lead_routed(lead_id=lead, grade="A", rep=rep))
    assert len(_all_deliveries(runtime)) == before
    assert find_in_database(runtime.db, NEEDLES) == []
    with runtime.db.transaction() as session:  # the other lead's, and the notice: not the lead's
        since = clock.now() - timedelta(days=1)
        assert repository.replay_since(session, marketing, since) == 2


def told(receiver: Receiver) -> list[Received]:
    return [r for r in receiver.requests if r.json()["type"] == ERASED]


def _all_deliveries(runtime: ServiceRuntime) -> list[Delivery]:
    with runtime.db.read() as session:
        return list(session.execute(select(Delivery)).scalars())
