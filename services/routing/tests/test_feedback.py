"""Feedback from sales, on SQLite and PostgreSQL: dispositions stop the clock, close the
lead or recycle it to nurture; feedback that comes before its assignment is kept."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.routing import repository, timers
from services.routing.models import RoutedLeadRow
from services.routing.service import build_definition
from services.routing.tests.support import (
    START,
    FakeClock,
    Recorder,
    assignments,
    feedback,
    rep,
    route,
    scored,
    standard_team,
)
from shared.contracts import LeadRoutedV1, LeadSlaV1
from shared.db import Database
from shared.service import ServiceRuntime
from shared.testing import factories
from shared.testing.pytest_plugin import service_settings


def said(lead_id: Any, status: str, at: Any, **values: Any) -> Any:
    return factories.lead_feedback(lead_id=lead_id, status=status, occurred_at=at, **values)


def loads(database: Database) -> dict[str, int]:
    with database.read() as session:
        return repository.open_loads(session, rep_ids=["ana", "ben"])


def test_contact_in_time_is_met_and_stops_the_clock(database: Database) -> None:
    standard_team(database, rep("ana", "dach"))
    lead = scored("A")
    route(database, lead, START)
    events = Recorder()
    feedback(
        database,
        said(lead.lead_id, "contacted", START + timedelta(hours=3)),
        START + timedelta(hours=3),
        events,
    )
    [met] = events.of(LeadSlaV1)
    assert (met.status, met.rep_id, met.due_at) == ("met", "ana", START + timedelta(days=1))
    [row] = assignments(database, lead.lead_id)
    assert (row.sla_status, row.feedback_status, row.state) == ("met", "contacted", "open")
    assert loads(database) == {"ana": 1}  # contacted is still an open lead

    clock = FakeClock(START + timedelta(days=3))
    definition = build_definition(clock=clock)
    runtime = ServiceRuntime(definition, service_settings(definition, database=database))
    assert timers.tick(runtime, clock) == 0  # nothing left to breach


@pytest.mark.parametrize(
    ("status", "values", "state"),
    [
        ("accepted", {}, "open"),
        (
            "rejected",
            {"rejection_reason": "wrong_target", "note": "not the decision maker"},
            "closed",
        ),
        ("rejected", {"rejection_reason": "bad_data"}, "closed"),
        (
            "converted",
            {"opportunity_id": "opp-42", "amount": Decimal("12000.50"), "currency": "EUR"},
            "closed",
        ),
        ("won", {"amount": Decimal("9000"), "currency": "EUR"}, "closed"),
        ("lost", {}, "closed"),
    ],
)
def test_dispositions_are_recorded_and_terminal_ones_free_the_rep(
    database: Database, status: str, values: dict[str, Any], state: str
) -> None:
    standard_team(database, rep("ana", "dach"))
    lead = scored("B")
    route(database, lead, START)
    feedback(database, said(lead.lead_id, status, START + timedelta(hours=1), **values), START)
    [row] = assignments(database, lead.lead_id)
    assert (row.state, row.feedback_status, row.sla_status) == (state, status, "met")
    assert row.rejection_reason == values.get("rejection_reason")
    if "opportunity_id" in values:
        assert (row.opportunity_id, row.amount, row.currency) == (
            "opp-42",
            Decimal("12000.50"),
            "EUR",
        )
    assert loads(database) == ({"ana": 1} if state == "open" else {})


def test_follow_up_after_the_deadline_is_a_breach_not_a_reassignment(database: Database) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    lead = scored("A")
    route(database, lead, START)
    events = Recorder()
    late = START + timedelta(days=1, minutes=1)
    feedback(database, said(lead.lead_id, "contacted", late), late, events)
    assert [(e.status, e.rep_id) for e in events.of(LeadSlaV1)] == [("breached", "ana")]
    assert events.of(LeadRoutedV1) == []
    [row] = assignments(database, lead.lead_id)
    assert (row.sla_status, row.rep_id) == ("late", "ana")


def test_no_timeframe_recycles_to_nurture_until_a_new_touchpoint(database: Database) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    lead = scored("A")
    first = route(database, lead, START)
    assert first is not None
    events = Recorder()
    feedback(
        database,
        said(lead.lead_id, "rejected", START + timedelta(hours=2), rejection_reason="no_timeframe"),
        START + timedelta(hours=2),
        events,
    )
    [recycled] = events.of(LeadRoutedV1)
    assert (recycled.outcome, recycled.rule, recycled.program_id, recycled.reassignment_of) == (
        "nurture",
        "recycled",
        "nurture-c",
        first.id,
    )
    assert recycled.explanation.startswith("rejected for no timeframe: recycled to nurture")
    assert loads(database) == {}

    quiet = Recorder()
    decay = scored("A", lead_id=lead.lead_id, trigger="decay", scored_at=START + timedelta(days=5))
    route(database, decay, START + timedelta(days=5), quiet)
    assert quiet.events == []
    back = Recorder()
    touch = scored(
        "A", lead_id=lead.lead_id, trigger="touchpoint", scored_at=START + timedelta(days=40)
    )
    route(database, touch, START + timedelta(days=40), back)
    [assigned] = back.of(LeadRoutedV1)
    assert (assigned.outcome, assigned.reassignment_of) == ("assigned", recycled.assignment_id)
    with database.read() as session:
        row = session.get(RoutedLeadRow, lead.lead_id)
        assert row is not None
        assert (row.state, row.recycled) == ("open", False)


def test_feedback_before_the_lead_is_routed_is_kept_and_applied(database: Database) -> None:
    standard_team(database, rep("ana", "dach"))
    lead = scored("A")
    feedback(database, said(lead.lead_id, "contacted", START), START)
    with database.read() as session:
        [kept] = repository.pending_feedback(session, lead_id=lead.lead_id)
        assert kept.status == "contacted"
    events = Recorder()
    route(database, lead, START + timedelta(minutes=5), events)
    [routed] = events.of(LeadRoutedV1)
    [met] = events.of(LeadSlaV1)
    assert (met.status, met.assignment_id) == ("met", routed.assignment_id)
    with database.read() as session:
        assert repository.pending_feedback(session, lead_id=lead.lead_id) == []
        [applied] = repository.lead_feedback(session, lead_id=lead.lead_id)
        assert applied.assignment_id == routed.assignment_id


def test_feedback_naming_a_rep_about_a_nurtured_lead_waits_for_that_assignment(
    database: Database,
) -> None:
    standard_team(database, rep("ana", "dach"))
    lead = scored("C")
    route(database, lead, START)
    feedback(
        database,
        said(lead.lead_id, "contacted", START + timedelta(hours=1), rep_crm_user_id="crm-ana"),
        START + timedelta(hours=1),
    )
    with database.read() as session:
        assert len(repository.pending_feedback(session, lead_id=lead.lead_id)) == 1
    events = Recorder()
    rise = scored(
        "A", lead_id=lead.lead_id, previous_grade="C", scored_at=START + timedelta(hours=2)
    )
    route(database, rise, START + timedelta(hours=2), events)
    assert [e.status for e in events.of(LeadSlaV1)] == ["met"]


def test_feedback_on_a_nurtured_lead_without_a_rep_is_recorded_there(database: Database) -> None:
    standard_team(database, rep("ana", "dach"))
    lead = scored("D")
    route(database, lead, START)
    feedback(database, said(lead.lead_id, "rejected", START, rejection_reason="duplicate"), START)
    [row] = assignments(database, lead.lead_id)
    assert (row.outcome, row.state, row.rejection_reason) == ("nurture", "closed", "duplicate")
    events = Recorder()
    route(
        database,
        scored("A", lead_id=lead.lead_id, scored_at=START + timedelta(days=1)),
        START,
        events,
    )
    assert events.events == []  # a closed lead is not routed again
