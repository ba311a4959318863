"""leads.erased on both databases: the lead's assignment is closed and its clock cancelled,
its postal code and feedback notes go, the outbox keeps none of its events, and a late
score or feedback routes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update

from services.routing import repository, timers
from services.routing.handlers import build_handlers
from services.routing.models import ERASURES, TABLES, FeedbackRow, RoutedLeadRow
from services.routing.tests.support import (
    START,
    FakeClock,
    assignments,
    outbox_events,
    rep,
    scored,
    standard_team,
)
from services.routing.tests.test_sla import runtime_for
from shared.cloudevents import Event
from shared.contracts import EventPayload, LeadRoutedV1
from shared.db import Database
from shared.kafka.consumer import HandlerContext
from shared.outbox import Outbox
from shared.testing import factories
from shared.testing.personal_data import find_in_database

OUTBOX = Outbox(TABLES, source="/leadflow/routing")
NEEDLES = (
    "zebulon.quackenbush@orbital-widgets.co.uk",
    "Zebulon",
    "Quackenbush",
    "+442079460321",
    "81669",  # the postal code, quoted by explanations
)


def handle(database: Database, clock: FakeClock, payload: EventPayload) -> None:
    """Run the service's handler as its consumer would: one transaction, the outbox."""
    handler = build_handlers(clock).get(type(payload))
    assert handler is not None
    event = Event(data=payload, source="/test", time=clock())
    with database.transaction() as session:
        handler(HandlerContext(session, event, OUTBOX, "test", 0, 0), payload)


def person(lead_id: uuid.UUID, at: datetime = START) -> EventPayload:
    return scored(
        "A",
        lead_id=lead_id,
        scored_at=at,
        lead={
            "email": NEEDLES[0],
            "first_name": "Zebulon",
            "last_name": "Quackenbush",
            "phone": NEEDLES[3],
            "postal_code": "81669",
        },
    )


def relay(database: Database) -> None:
    outbox = TABLES.outbox
    with database.transaction() as session:
        session.execute(update(outbox).values(published_at=datetime.now(UTC)))


def test_an_erased_lead_is_closed_anonymised_and_its_clock_cancelled(database: Database) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    clock = FakeClock(START)
    lead_id, other = uuid.uuid4(), uuid.uuid4()
    handle(database, clock, person(lead_id))
    handle(database, clock, scored("A", lead_id=other))
    note = "Zebulon Quackenbush wants a call back on +442079460321"
    contacted = factories.lead_feedback(
        lead_id=lead_id, status="contacted", note=note, occurred_at=clock()
    )
    handle(database, clock, contacted)
    relay(database)
    [assignment] = assignments(database, lead_id)
    assert "81669" in assignment.explanation
    assert find_in_database(database, NEEDLES)

    clock.advance(hours=1)
    handle(database, clock, factories.lead_erased(lead_id=lead_id, erased_at=clock()))

    found = find_in_database(database, NEEDLES)
    assert found == [], "\n".join(map(str, found))
    [closed] = assignments(database, lead_id)
    assert (closed.state, closed.ended_reason, closed.closed_at) == ("closed", "erased", clock())
    assert closed.rep_id == "ana"  # who had it, the grade, the outcome: anonymous facts stay
    assert (closed.feedback_status, closed.sla_status) == ("contacted", "met")
    with database.read() as session:
        lead = session.get(RoutedLeadRow, lead_id)
        assert lead is not None
        assert (lead.state, lead.postal_code, lead.country, lead.grade) == (
            "closed",
            None,
            "DE",
            "A",
        )
        assert repository.open_loads(session, rep_ids=["ana", "ben"]) == {"ben": 1}
        assert ERASURES.unpurged(session) == []
    assert {event.lead_id for event in outbox_events(database)} == {other}


def test_a_running_clock_is_cancelled_and_late_events_route_nothing(database: Database) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    clock = FakeClock(START)
    lead_id, never_scored = uuid.uuid4(), uuid.uuid4()
    handle(database, clock, person(lead_id))
    handle(database, clock, factories.lead_erased(lead_id=lead_id, erased_at=clock()))
    [assignment] = assignments(database, lead_id)
    assert (assignment.state, assignment.sla_status) == ("closed", "cancelled")
    with database.read() as session:  # its leads.routed was not published yet: kept till then
        assert ERASURES.unpurged(session) == [lead_id]

    clock.advance(days=2)  # long past the deadline: no warning, breach or re-assignment
    assert timers.tick(runtime_for(database, clock), clock) == 0

    # Topics are not ordered with each other: the erasure may come first.
    handle(database, clock, factories.lead_erased(lead_id=never_scored, erased_at=clock()))
    handle(database, clock, person(never_scored, at=clock()))
    handle(database, clock, person(lead_id, at=clock()))
    handle(database, clock, factories.lead_feedback(lead_id=lead_id, status="won", note="Zebulon"))
    assert assignments(database, never_scored) == []
    with database.read() as session:
        assert session.get(RoutedLeadRow, never_scored) is None
        assert session.execute(select(FeedbackRow)).first() is None
    routed = [e for e in outbox_events(database) if isinstance(e, LeadRoutedV1)]
    assert [e.lead_id for e in routed] == [lead_id]  # the first one only, still to be sent

    relay(database)
    with database.transaction() as session:  # what the outbox purger does
        ERASURES.purge_outbox(session, lead_ids=ERASURES.unpurged(session))
    assert outbox_events(database) == []
    assert find_in_database(database, NEEDLES) == []
