"""``leads.ingested`` a consumer batch at a time (the batch handler), on both databases: a
batch leaves the same projection, scores and events as its records one at a time, and an
erasure or feedback in the batch is seen by the events after it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.scoring import repository, rulebook_store
from services.scoring.models import LeadRecord, ScoreHistory, ScoreRecord, TouchpointRecord
from services.scoring.tests.support import consume, handle, published, rows
from shared.contracts import EventPayload, LeadIngestedV1, Touchpoint
from shared.db import Database
from shared.testing import factories
from shared.testing.locks import backend_of, wait_until_blocked_by

T0 = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)


def ingested(lead_id: uuid.UUID, count: int, touchpoint: Touchpoint, **lead: Any) -> LeadIngestedV1:
    return factories.lead_ingested(
        lead_id=lead_id,
        change="created" if count == 1 else "merged",
        lead=factories.lead_snapshot(created_at=T0, **lead),
        touchpoint=touchpoint,
        touchpoint_count=count,
    )


def stream() -> list[tuple[EventPayload, datetime]]:
    """Three leads: touchpoints of one lead in a row and apart, a touchpoint delivered twice
    (under another event id), an older snapshot after a newer one, feedback before a lead
    and between a lead's touchpoints."""
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def tp(kind: str, day: int) -> Touchpoint:
        return factories.touchpoint(type=kind, occurred_at=T0 + timedelta(days=day))

    repeated = tp("webinar_attendance", 3)
    return [
        (factories.lead_feedback(lead_id=c, status="lost", occurred_at=T0), T0),
        (ingested(a, 1, tp("form_submission", 0), title="CTO"), T0),
        (ingested(a, 2, tp("demo_request", 1), title="CTO"), T0 + timedelta(days=1)),
        (ingested(b, 1, tp("content_download", 1)), T0 + timedelta(days=1)),
        (ingested(c, 1, tp("pricing_request", 2)), T0 + timedelta(days=2)),
        (ingested(b, 2, repeated, title="VP Sales"), T0 + timedelta(days=3)),
        (ingested(b, 2, repeated, title="VP Sales"), T0 + timedelta(days=3, hours=1)),
        (factories.lead_feedback(lead_id=a, status="won", occurred_at=T0), T0),
        (ingested(a, 4, tp("email_click", 4), title="CEO"), T0 + timedelta(days=4)),
        (ingested(a, 3, tp("pricing_request", 3), title="CTO"), T0 + timedelta(days=4)),
    ]


def outcome(database: Database) -> dict[str, Any]:
    """What the stream left, without its ids (each run has leads of its own)."""
    leads = sorted(rows(database, LeadRecord), key=lambda lead: lead.created_at)
    order = {lead.lead_id: index for index, lead in enumerate(leads)}
    return {
        "published": [
            (order[e.lead_id], e.grade, e.previous_grade, e.fit_score, e.engagement_score)
            for e in published(database)
        ],
        "leads": [
            (lead.snapshot["title"], lead.touchpoint_count, lead.closed, lead.status)
            for lead in leads
        ],
        "scores": sorted(
            (order[s.lead_id], s.grade, s.next_check_at is None, s.scored_at)
            for s in rows(database, ScoreRecord)
        ),
        "history": sorted(
            (order[h.lead_id], h.grade, h.previous_grade, h.scored_at)
            for h in rows(database, ScoreHistory)
        ),
        "touchpoints": len(rows(database, TouchpointRecord)),
    }


def test_a_batch_leaves_what_its_records_one_at_a_time_leave(database: Database) -> None:
    events = stream()
    for payload, time in events:
        handle(database, payload, time=time)
    one_at_a_time = outcome(database)
    # The same again, fresh: the whole stream in one consumer batch.
    with database.transaction() as session:
        for table in ("leads", "touchpoints", "scores", "score_history", "feedback", "outbox"):
            session.execute(text(f"DELETE FROM {table}"))
    consume(database, stream())

    assert outcome(database) == one_at_a_time
    assert len(one_at_a_time["published"]) == 7  # every new touchpoint, the repeat not
    # The second touchpoint of a lead in the batch has the first's grade as previous.
    first, second = one_at_a_time["published"][:2]
    assert second[2] == first[1]


def test_an_erasure_in_a_batch_keeps_the_person_out_of_the_events_after_it(
    database: Database,
) -> None:
    lead_id = uuid.uuid4()
    first = ingested(lead_id, 1, factories.touchpoint(occurred_at=T0))
    later = ingested(lead_id, 2, factories.touchpoint(occurred_at=T0 + timedelta(hours=1)))
    consume(
        database,
        [(first, T0), (factories.lead_erased(lead_id=lead_id), T0), (later, T0)],
    )
    assert rows(database, LeadRecord) == []
    assert rows(database, TouchpointRecord) == []
    assert rows(database, ScoreRecord) == []
    assert [event.lead_id for event in published(database)] == [lead_id]  # the first only


def test_writers_of_scores_hold_the_rulebook_lock_an_activation_takes(
    database: Database,
) -> None:
    """PostgreSQL: while a transaction scores with the active version, no activation can
    commit (it waits for the lock); SQLite has one writer anyway."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time")
    try_lock = text("SELECT pg_try_advisory_xact_lock(:key)")
    with database.transaction() as scoring:
        rulebook_store.for_scoring(session=scoring, now=T0)
        with database.transaction() as activation:
            key = {"key": repository.RULEBOOK_LOCK}
            assert activation.execute(try_lock, key).scalar_one() is False
    with database.transaction() as activation:
        assert activation.execute(try_lock, key).scalar_one() is True


def test_two_transactions_that_install_the_default_rulebook_at_once_both_get_version_one(
    database: Database,
) -> None:
    """PostgreSQL: at start the installing worker and the first batch scored both find no
    rulebook. The second waits for the first's insert and takes its version, rather than
    failing on the unique index of the active version."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time")
    with ThreadPoolExecutor(1) as pool, database.transaction() as first:
        installed = rulebook_store.ensure_active(session=first, now=T0)
        first_backend = backend_of(first)

        def second() -> tuple[int, str]:
            with database.transaction() as session:
                record = rulebook_store.ensure_active(session=session, now=T0 + timedelta(1))
                return record.version, record.checksum

        answer = pool.submit(second)
        wait_until_blocked_by(database, first_backend, answer)
        first.commit()
    assert answer.result(timeout=30) == (installed.version, installed.checksum)
    with database.read() as session:
        assert [record.version for record in repository.rulebooks(session=session)] == [1]


def test_a_rulebook_read_in_a_savepoint_that_rolls_back_is_read_again(database: Database) -> None:
    """A batch re-run a record at a time has a savepoint per record: the default rulebook
    installed (and the rulebook lock taken) in one that rolls back are gone, so the next
    record reads and installs them again rather than trusting what the first read."""
    with database.transaction() as session:
        savepoint = session.begin_nested()
        rulebook_store.for_scoring(session=session, now=T0)
        savepoint.rollback()
        assert repository.active_rulebook(session=session) is None
        rulebook = rulebook_store.for_scoring(session=session, now=T0)
    with database.read() as session:
        active = repository.active_rulebook(session=session)
        assert active is not None
        assert active.version == rulebook.version
