"""leads.erased on both databases: the projection forgets the person, the published grades
and the feedback stay, the outbox keeps no snapshot, and a late leads.ingested changes
nothing."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from services.scoring.handlers import handlers
from services.scoring.models import (
    ERASURES,
    TABLES,
    FeedbackRecord,
    LeadRecord,
    ScoreHistory,
    ScoreRecord,
    TouchpointRecord,
)
from services.scoring.tests.support import OUTBOX, handle, published, rows
from shared.cloudevents import Event
from shared.contracts import LeadErasedV1, LeadIngestedV1, Utm
from shared.db import Database
from shared.kafka.consumer import HandlerContext
from shared.testing import factories
from shared.testing.locks import wait_until_waiting_for_an_advisory_lock
from shared.testing.personal_data import find_in_database

T0 = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)
NEEDLES = ("zebulon.quackenbush@orbital-widgets.co.uk", "Zebulon", "Quackenbush", "+442079460321")


def person(lead_id: uuid.UUID, count: int = 1, at: datetime = T0) -> LeadIngestedV1:
    return factories.lead_ingested(
        lead_id=lead_id,
        change="created" if count == 1 else "merged",
        lead=factories.lead_snapshot(
            email=NEEDLES[0],
            first_name="Zebulon",
            last_name="Quackenbush",
            phone=NEEDLES[3],
            attributes={"referred_by": "Zebulon's colleague"},
            created_at=T0,
        ),
        touchpoint=factories.touchpoint(
            occurred_at=at, utm=Utm(source="linkedin", term="zebulon quackenbush")
        ),
        touchpoint_count=count,
    )


def relay(database: Database) -> None:
    """What the relay does after it sent them: mark the outbox rows published."""
    outbox = TABLES.outbox
    with database.transaction() as session:
        session.execute(update(outbox).values(published_at=datetime.now(UTC)))


def test_an_erased_lead_is_forgotten_and_its_grades_and_feedback_stay(database: Database) -> None:
    lead_id, other = uuid.uuid4(), uuid.uuid4()
    handle(database, person(lead_id), time=T0)
    handle(database, factories.lead_ingested(lead_id=other), time=T0)
    handle(database, factories.lead_feedback(lead_id=lead_id, status="accepted"), time=T0)
    relay(database)
    assert find_in_database(database, NEEDLES)

    erased_at = T0 + timedelta(days=1)
    handle(database, factories.lead_erased(lead_id=lead_id, erased_at=erased_at), time=erased_at)

    found = find_in_database(database, NEEDLES)
    assert found == [], "\n".join(map(str, found))
    assert [r.lead_id for r in rows(database, LeadRecord)] == [other]
    assert {r.lead_id for r in rows(database, TouchpointRecord)} == {other}
    assert {r.lead_id for r in rows(database, ScoreRecord)} == {other}
    assert {r.lead_id for r in rows(database, ScoreHistory)} == {lead_id, other}
    feedback = [(r.lead_id, r.status) for r in rows(database, FeedbackRecord)]
    assert feedback == [(lead_id, "accepted")]
    with database.read() as session:
        assert ERASURES.is_erased(session, lead_id)
        assert ERASURES.unpurged(session) == []  # nothing was waiting in the outbox
    assert [e.lead_id for e in published(database)] == [other]  # its rows were not touched

    # Late, or replayed from the start of the topic: nothing comes back, nothing is scored.
    handle(database, person(lead_id, count=2, at=T0 + timedelta(days=2)), time=erased_at)
    handle(database, factories.lead_erased(lead_id=lead_id, erased_at=erased_at), time=erased_at)
    assert find_in_database(database, NEEDLES) == []
    assert [e.lead_id for e in published(database)] == [other]


def test_events_still_waiting_in_the_outbox_are_purged_once_published(database: Database) -> None:
    lead_id = uuid.uuid4()
    handle(database, person(lead_id), time=T0)  # its leads.scored is not published yet
    handle(database, factories.lead_erased(lead_id=lead_id), time=T0)
    with database.read() as session:
        assert ERASURES.unpurged(session) == [lead_id]
    assert [e.lead_id for e in published(database)] == [lead_id]

    relay(database)
    with database.transaction() as session:  # what the outbox purger does
        assert ERASURES.purge_outbox(session, lead_ids=ERASURES.unpurged(session)) == set()
    assert published(database) == []
    assert find_in_database(database, NEEDLES) == []
    with database.read() as session:
        assert ERASURES.unpurged(session) == []


def test_an_erasure_and_an_event_of_the_lead_take_turns(database: Database) -> None:
    """Replicas read leads.erased and leads.ingested from different partitions at once: the
    event waits for the erasure in hand (or the erasure for the event), never both at once."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: nothing runs beside an erasure")
    lead_id = uuid.uuid4()
    handle(database, person(lead_id), time=T0)
    erased = factories.lead_erased(lead_id=lead_id)
    erase = handlers.get(LeadErasedV1)
    assert erase is not None
    with ThreadPoolExecutor(1) as pool, database.transaction() as session:
        erase(HandlerContext(session, Event(data=erased, source="/t"), OUTBOX, "t", 0, 0), erased)
        late = pool.submit(handle, database, person(lead_id, 2, T0), time=T0)
        wait_until_waiting_for_an_advisory_lock(database, late)
    late.result(timeout=30)
    assert rows(database, LeadRecord) == []
    relay(database)
    with database.transaction() as session:
        ERASURES.purge_outbox(session, lead_ids=ERASURES.unpurged(session))
    assert find_in_database(database, NEEDLES) == []


def test_an_erasure_in_the_batch_of_the_leads_event_waits_for_what_it_emitted(
    database: Database,
) -> None:
    """A consumer's batch writes what its handlers emit at its end: an erasure read in the same
    batch after the lead's leads.ingested must still count that leads.scored as waiting."""
    lead_id = uuid.uuid4()
    erased = factories.lead_erased(lead_id=lead_id)
    ingested = person(lead_id)
    with database.transaction() as session, OUTBOX.buffered(session):
        for payload in (ingested, erased):
            handler = handlers.get(type(payload))
            assert handler is not None
            event = Event(data=payload, source="/t", time=T0)
            handler(HandlerContext(session, event, OUTBOX, "t", 0, 0), payload)
    assert [e.lead_id for e in published(database)] == [lead_id]
    with database.read() as session:
        assert ERASURES.unpurged(session) == [lead_id]
    relay(database)
    with database.transaction() as session:
        ERASURES.purge_outbox(session, lead_ids=ERASURES.unpurged(session))
    assert find_in_database(database, NEEDLES) == []
