"""Captures that merge into the same lead at the same time (two replicas, a batch beside a
single submission) each add what they brought: none writes over the other's change with
the lead as it read it before the other committed. PostgreSQL: SQLite runs one writer at
a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from services.ingest.capture import Captured, Rejected, capture, capture_many
from services.ingest.models import Lead
from services.ingest.settings import IngestSettings
from services.ingest.tests.test_capture_many import outcome_events, submissions
from services.ingest.tests.test_imports import OUTBOX, settings
from shared.db import Database
from shared.testing.locks import backend_of, wait_until_blocked_by

EXISTING = {"email": "ada@acme.com", "phone": "+14155550100"}


def capture_alone(database: Database, item: dict[str, Any], config: IngestSettings) -> Captured:
    with database.transaction() as session:
        return capture(session, OUTBOX, submission=submissions([item])[0], settings=config)


def capture_in_a_batch(
    database: Database, item: dict[str, Any], config: IngestSettings
) -> list[Captured | Rejected]:
    other = {"email": "someone.else@initech.com"}
    with database.transaction() as session:
        return capture_many(
            session, OUTBOX, submissions=submissions([item, other]), settings=config
        )


@pytest.mark.parametrize("door", ["alone", "in a batch"])
@pytest.mark.parametrize("match", ["email", "phone"])
def test_two_captures_merging_into_one_lead_at_once_both_add_what_they_brought(
    database: Database, door: str, match: str
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time")
    config = settings(database)
    capture_alone(database, EXISTING, config)
    first = {
        match: EXISTING[match],
        "consent": {"email_marketing": True},
        "webinar_seat": "A12",
    }
    second = {
        match: EXISTING[match],
        "consent": {"phone_contact": True},
        "how_did_you_hear": "a colleague",
    }
    other_door = capture_alone if door == "alone" else capture_in_a_batch
    with ThreadPoolExecutor(1) as pool, database.transaction() as session:
        merged = capture(session, OUTBOX, submission=submissions([first])[0], settings=config)
        assert merged.change == "merged"
        backend = backend_of(session)
        answer = pool.submit(other_door, database, second, config)
        wait_until_blocked_by(database, backend, answer)
        session.commit()
    answer.result(timeout=60)

    with database.read() as session:
        by_email = select(Lead).where(col(Lead.email) == EXISTING["email"])
        lead = session.execute(by_email).scalar_one()
    assert lead.touchpoint_count == 3
    assert lead.consent == {"email_marketing": True, "phone_contact": True}
    assert lead.attributes == {"webinar_seat": "A12", "how_did_you_hear": "a colleague"}
    counts = [
        event["touchpoint_count"]
        for event in outcome_events(database)
        if event["lead_id"] == str(lead.id)
    ]
    assert counts == [1, 2, 3]


def test_a_phone_s_lead_given_an_email_while_waited_for_is_another_person_s(
    database: Database,
) -> None:
    """A submission with an email finds by its phone a lead with none; a concurrent capture
    gives that lead another email before it is held: two people, one switchboard."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time")
    config = settings(database)
    switchboard = "+14155550123"
    capture_alone(database, {"phone": switchboard, "company": "Initech"}, config)
    with ThreadPoolExecutor(1) as pool, database.transaction() as session:
        first = submissions([{"phone": switchboard, "email": "peter@initech.com"}])[0]
        assert capture(session, OUTBOX, submission=first, settings=config).change == "merged"
        second = {"phone": switchboard, "email": "milton@initech.com"}
        answer = pool.submit(capture_alone, database, second, config)
        wait_until_blocked_by(database, backend_of(session), answer)
        session.commit()
    assert answer.result(timeout=60).change == "created"
    with database.read() as session:
        leads = session.execute(select(Lead).order_by(col(Lead.created_at))).scalars().all()
    assert [(lead.email, lead.phone, lead.touchpoint_count) for lead in leads] == [
        ("peter@initech.com", switchboard, 2),
        ("milton@initech.com", switchboard, 1),
    ]
