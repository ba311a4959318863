"""A lead's journey and the recent leads, against the scenario (tests/scenario.py), by hand.

Times are 2026, UTC."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from services.reporting.domain.filters import Filters
from services.reporting.domain.journey import journey, recent_leads
from services.reporting.domain.leads import build_leads
from services.reporting.domain.periods import quarter_period
from services.reporting.domain.records import Facts
from services.reporting.tests import scenario
from services.reporting.tests.scenario import LEADS, at


def facts_of(name: str) -> Facts:
    everything = scenario.facts()
    lead_id = LEADS[name]
    return Facts(
        touchpoints=tuple(t for t in everything.touchpoints if t.lead_id == lead_id),
        grades=tuple(g for g in everything.grades if g.lead_id == lead_id),
        assignments=tuple(a for a in everything.assignments if a.lead_id == lead_id),
        sla=tuple(s for s in everything.sla if s.lead_id == lead_id),
        feedback=tuple(f for f in everything.feedback if f.lead_id == lead_id),
    )


def test_a_breached_and_reassigned_lead_tells_its_whole_story() -> None:
    found = journey(facts_of("L2"))
    assert found is not None
    lead = found.lead
    assert (lead.source, lead.campaign, lead.grade) == ("web_form", "webinar", "A")
    # The owner is the re-assignment: r1 of emea, whose clock (due a day after 01-07 10:05)
    # was met by the contact at 14:02.
    assert (lead.outcome, lead.rep_id, lead.rep_name, lead.team_id) == (
        "assigned",
        "r1",
        "R1",
        "emea",
    )
    assert lead.sla_due_at == at(1, 8, 10, 5)
    assert lead.sla_status == "met"
    # Rejected before it was accepted: it stopped at MQL.
    assert (lead.stage, lead.rejection_reason) == ("mql", "no_timeframe")
    assert [(a.rep_id, a.sla_status) for a in found.assignments] == [
        ("r2", "breached"),
        ("r1", "met"),
    ]
    assert found.assignments[1].reassignment_of == found.assignments[0].assignment_id
    assert [(f.status, f.rejection_reason) for f in found.feedback] == [
        ("contacted", None),
        ("rejected", "no_timeframe"),
    ]
    # First assigned 01-06 10:02, first touched 01-07 14:02: 28 hours.
    assert found.speed_to_first_touch_seconds == 28 * 3600
    assert [g.grade for g in found.grades] == ["A"]
    assert (found.country, found.region, found.vertical) == ("DE", "DE-BY", "manufacturing")


def test_stages_money_and_clocks_of_other_leads() -> None:
    won = journey(facts_of("L1"))
    assert won is not None
    assert (won.lead.stage, won.pipeline, won.revenue) == ("won", Decimal(10000), Decimal(12000))
    assert [t.campaign for t in won.touchpoints] == ["webinar", "tradeshow", "directory"]
    assert [g.grade for g in won.grades] == ["B", "A"]
    escalated = journey(facts_of("L5"))
    assert escalated is not None
    assert (escalated.lead.sla_status, escalated.lead.rep_id) == ("breached", "r2")
    nurtured = journey(facts_of("L4"))
    assert nurtured is not None
    assert (nurtured.lead.outcome, nurtured.lead.rep_id, nurtured.lead.sla_status) == (
        "nurture",
        None,
        None,
    )
    assert nurtured.lead.stage == "ingested"
    # A clock nobody has moved yet is running.
    running = facts_of("L9")
    unsettled = replace(running, sla=(), feedback=())
    found = journey(unsettled)
    assert found is not None
    assert found.lead.sla_status == "running"
    assert found.lead.sla_due_at == at(2, 3, 10, 2) + timedelta(days=1)


def test_a_lead_never_ingested_has_no_journey() -> None:
    assert journey(facts_of("L7")) is None


def test_recent_leads_are_the_newest_the_filters_select() -> None:
    leads = build_leads(scenario.facts())
    q1 = Filters(period=quarter_period("2026-Q1"))
    names = {lead_id: name for name, lead_id in LEADS.items()}
    assert [names[s.lead_id] for s in recent_leads(leads, q1)] == [
        "L9",
        "L8",
        "L5",
        "L4",
        "L3",
        "L2",
        "L1",
    ]
    assert [names[s.lead_id] for s in recent_leads(leads, Filters(), limit=2)] == ["L6", "L9"]
    americas = Filters(team="americas")
    assert [names[s.lead_id] for s in recent_leads(leads, americas)] == ["L9", "L3"]
