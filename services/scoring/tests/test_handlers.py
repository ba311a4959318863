"""The consumer's handlers on both databases: the projection, scores, history, events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.scoring.models import (
    FeedbackRecord,
    LeadRecord,
    RulebookRecord,
    ScoreHistory,
    ScoreRecord,
    TouchpointRecord,
)
from services.scoring.tests.support import handle, published, rows
from shared.contracts import CompanySnapshot, LeadIngestedV1
from shared.db import Database
from shared.testing import factories

T0 = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)


def ingested(
    lead_id: uuid.UUID, kind: str, at: datetime, count: int, **lead: Any
) -> LeadIngestedV1:
    return factories.lead_ingested(
        lead_id=lead_id,
        change="created" if count == 1 else "merged",
        lead=factories.lead_snapshot(created_at=T0, **lead),
        touchpoint=factories.touchpoint(type=kind, occurred_at=at),
        touchpoint_count=count,
    )


def test_a_new_lead_is_kept_scored_and_published(database: Database) -> None:
    lead_id = uuid.uuid4()
    payload = ingested(lead_id, "form_submission", T0, 1)
    handle(database, payload, time=T0)

    [rulebook] = rows(database, RulebookRecord)
    assert (rulebook.version, rulebook.name, rulebook.active) == (1, "default", True)
    [lead] = rows(database, LeadRecord)
    assert lead.lead_id == lead_id
    assert lead.company_domain == "analytical-engines.co.uk"
    assert [tp.type for tp in rows(database, TouchpointRecord)] == ["form_submission"]

    [score] = rows(database, ScoreRecord)
    assert (score.grade, score.fit_score, score.engagement_score) == ("B", 70, 5)
    assert score.trigger == "touchpoint"
    assert score.touchpoint_id == payload.touchpoint.touchpoint_id
    assert {reason["rule"] for reason in score.reasons} >= {"seniority", "form_submission"}
    assert score.next_check_at is None  # low engagement already: decay cannot lower it

    [event] = published(database)
    assert event.lead_id == lead_id
    assert (event.grade, event.previous_grade, event.rulebook_version) == ("B", None, 1)
    assert (event.fit_score, event.engagement_score) == (70, 5)
    assert event.trigger == "touchpoint"
    assert event.touchpoint_id == payload.touchpoint.touchpoint_id
    assert event.lead == payload.lead  # routing needs no other source
    assert event.scored_at == T0
    assert [c.category for c in event.categories] == ["default"]
    reasons = {reason.rule: reason for reason in event.reasons}
    assert reasons["seniority"].points == 20
    assert reasons["seniority"].kind == "fit"
    assert reasons["form_submission"].kind == "engagement"
    assert [h.grade for h in rows(database, ScoreHistory)] == ["B"]


def test_each_touchpoint_rescores_with_the_whole_history(database: Database) -> None:
    lead_id = uuid.uuid4()
    handle(database, ingested(lead_id, "form_submission", T0, 1), time=T0)
    later = T0 + timedelta(days=2)
    handle(database, ingested(lead_id, "demo_request", later, 2), time=later)

    first, second = published(database)
    assert (first.grade, second.grade, second.previous_grade) == ("B", "A", "B")
    assert second.engagement_score > 40
    [score] = rows(database, ScoreRecord)
    assert score.grade == "A"
    # In market for 14 days, then decay takes the demo below the line: re-check then.
    assert score.next_check_at is not None
    assert score.next_check_at > later + timedelta(days=14)
    assert [h.grade for h in rows(database, ScoreHistory)] == ["B", "A"]


def test_a_touchpoint_seen_before_changes_nothing(database: Database) -> None:
    lead_id = uuid.uuid4()
    payload = ingested(lead_id, "demo_request", T0, 1)
    handle(database, payload, time=T0)
    # Re-published by ingest under a new event id (the runtime only skips the same id).
    handle(database, payload, time=T0 + timedelta(minutes=1))
    assert len(published(database)) == 1
    assert len(rows(database, ScoreHistory)) == 1


def test_an_older_snapshot_never_overwrites_a_newer_one(database: Database) -> None:
    lead_id = uuid.uuid4()
    handle(database, ingested(lead_id, "form_submission", T0, 2, title="CTO"), time=T0)
    stale = ingested(lead_id, "email_click", T0 - timedelta(days=1), 1, title="Intern")
    handle(database, stale, time=T0 + timedelta(minutes=1))
    [lead] = rows(database, LeadRecord)
    assert lead.snapshot["title"] == "CTO"
    assert lead.touchpoint_count == 2
    # The old touchpoint still counts for engagement.
    assert sorted(tp.type for tp in rows(database, TouchpointRecord)) == [
        "email_click",
        "form_submission",
    ]


def test_a_free_mail_domain_is_no_company(database: Database) -> None:
    lead_id, account = uuid.uuid4(), uuid.uuid4()
    company = CompanySnapshot(domain="gmail.com", account_id=account)
    handle(
        database,
        ingested(lead_id, "form_submission", T0, 1, free_mail=True, company=company),
        time=T0,
    )
    [lead] = rows(database, LeadRecord)
    assert (lead.company_domain, lead.account_id) == (None, account)


def test_feedback_closes_a_lead_and_stops_its_decay_checks(database: Database) -> None:
    lead_id = uuid.uuid4()
    handle(database, ingested(lead_id, "demo_request", T0, 1), time=T0)
    [score] = rows(database, ScoreRecord)
    assert score.next_check_at is not None

    handle(database, factories.lead_feedback(lead_id=lead_id, status="accepted"), time=T0)
    [lead] = rows(database, LeadRecord)
    assert (lead.status, lead.closed) == ("accepted", False)

    won = factories.lead_feedback(lead_id=lead_id, status="won", occurred_at=T0 + timedelta(days=9))
    handle(database, won, time=T0)
    [lead] = rows(database, LeadRecord)
    assert (lead.status, lead.closed) == ("won", True)
    [score] = rows(database, ScoreRecord)
    assert score.next_check_at is None
    # Feedback that arrives late (an older status) does not reopen it.
    late = factories.lead_feedback(lead_id=lead_id, status="contacted", occurred_at=T0)
    handle(database, late, time=T0)
    [lead] = rows(database, LeadRecord)
    assert (lead.status, lead.closed) == ("won", True)
    assert len(rows(database, FeedbackRecord)) == 3


def test_feedback_before_the_lead_closes_it_when_it_comes(database: Database) -> None:
    lead_id = uuid.uuid4()
    handle(database, factories.lead_feedback(lead_id=lead_id, status="lost"), time=T0)
    handle(database, ingested(lead_id, "demo_request", T0, 1), time=T0)
    [lead] = rows(database, LeadRecord)
    assert lead.closed
    [score] = rows(database, ScoreRecord)
    assert score.next_check_at is None
    assert len(published(database)) == 1  # a touchpoint is always scored and published


def test_reopened_lead_is_checked_at_once(database: Database) -> None:
    lead_id = uuid.uuid4()
    handle(database, ingested(lead_id, "demo_request", T0, 1), time=T0)
    handle(database, factories.lead_feedback(lead_id=lead_id, status="converted"), time=T0)
    again = T0 + timedelta(days=1)
    handle(
        database,
        factories.lead_feedback(
            lead_id=lead_id,
            status="rejected",
            rejection_reason="no_timeframe",
            occurred_at=datetime.now(UTC) + timedelta(days=1),
        ),
        time=again,
    )
    [lead] = rows(database, LeadRecord)
    assert (lead.status, lead.closed) == ("rejected", False)
    [score] = rows(database, ScoreRecord)
    assert score.next_check_at == again
