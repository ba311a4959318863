"""The hand-computed scenario every reporting test checks its figures against.

A first quarter of 2026 with three campaigns (webinar from web forms, directory listings,
a trade show), two teams (emea: reps r1 and r2; americas: r3), and nine leads:

* L1, created 01-05 09:00, webinar / web_form, GB GB-LND, software (known only from its
  third submission). Graded B, then A. Assigned to r1 at 09:02, contacted 11:02 (SLA met),
  accepted 01-06 09:02, opportunity of 10 000 on 01-25, won 12 000 on 02-10. Came back via
  the tradeshow (01-12) and a directory listing (01-20) before its opportunity.
* L2, 01-06 10:00, webinar / web_form, DE DE-BY, manufacturing. Graded A. Assigned to r2 at
  10:02, warned, breached 01-07 10:02, re-assigned to r1 at 10:05, contacted 14:02 (met),
  rejected no_timeframe on 01-08 (recycled).
* L3, 01-07 12:00, directory / directory, US US-CA, software. Graded B. Assigned to r3 at
  12:02, contacted 13:02 (met), accepted 01-09 12:01, opportunity of 5 000 on 01-15, lost on
  02-01. Came back via the webinar on 01-20, after its opportunity.
* L4, 01-08 09:00, tradeshow / event, US US-NY, financial_services. Graded C: nurture.
* L5, 01-09 09:00, directory / directory, GB GB-MAN, software. Graded B. Assigned to r2 at
  09:02, breached and escalated, never followed up: still waiting.
* L6, 04-02 09:00, webinar / web_form, DE DE-BE, software. Graded D. The second quarter.
* L7: graded A and contacted, but never ingested: it counts nowhere.
* L8, 02-02 09:00, webinar / web_form, GB GB-LND, software. Graded A. Assigned to r1 at
  09:02, contacted 09:32 (met), rejected wrong_target on 02-03.
* L9, 02-03 10:00, directory / directory, US US-TX, retail. Graded B. Assigned to r3 at
  10:02, rejected bad_data at 12:02 (met).

The figures these make are written out in the tests, each worked by hand there.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.reporting.domain.records import (
    AssignmentRecord,
    CostRecord,
    Facts,
    FeedbackRecord,
    GradeRecord,
    SlaRecord,
    TargetRecord,
    TouchpointRecord,
)
from shared.cloudevents import Event
from shared.contracts import (
    CompanySnapshot,
    EventPayload,
    LeadFeedbackV1,
    LeadIngestedV1,
    LeadRoutedV1,
    LeadScoredV1,
    LeadSlaV1,
    RepRef,
)
from shared.testing import factories

# What "now" is for the scenario's figures (leads still waiting are waiting until then).
AS_OF = datetime(2026, 4, 3, 9, 2, tzinfo=UTC)
Q1 = "2026-Q1"


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"leadflow-reporting-scenario/{name}")


LEADS = {name: _id(name) for name in ("L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9")}
ORIGIN = {
    "L1": ("webinar", "web_form", "GB", "GB-LND", "software"),
    "L2": ("webinar", "web_form", "DE", "DE-BY", "manufacturing"),
    "L3": ("directory", "directory", "US", "US-CA", "software"),
    "L4": ("tradeshow", "event", "US", "US-NY", "financial_services"),
    "L5": ("directory", "directory", "GB", "GB-MAN", "software"),
    "L6": ("webinar", "web_form", "DE", "DE-BE", "software"),
    "L8": ("webinar", "web_form", "GB", "GB-LND", "software"),
    "L9": ("directory", "directory", "US", "US-TX", "retail"),
}
CREATED = {
    "L1": at(1, 5, 9),
    "L2": at(1, 6, 10),
    "L3": at(1, 7, 12),
    "L4": at(1, 8, 9),
    "L5": at(1, 9, 9),
    "L6": at(4, 2, 9),
    "L8": at(2, 2, 9),
    "L9": at(2, 3, 10),
}
TEAM = {"r1": "emea", "r2": "emea", "r3": "americas"}
COSTS = (
    CostRecord("webinar", Q1, Decimal("6000")),
    CostRecord("directory", Q1, Decimal("1000")),
    CostRecord("tradeshow", Q1, Decimal("5000")),
    CostRecord("webinar", "2026-Q2", Decimal("3000")),
)
TARGETS = (
    TargetRecord(Q1, "campaign", "webinar", leads=4, mqls=3, conversion=0.25),
    TargetRecord(Q1, "team", "emea", leads=5, mqls=5, conversion=0.2),
    TargetRecord("2026-Q2", "campaign", "webinar", leads=10),
)


def _event(payload: EventPayload, name: str) -> Event[EventPayload]:
    return Event(data=payload, source="/scenario", id=f"scenario-{name}")


def _touch(
    lead: str, name: str, when: datetime, *, campaign: str, created: bool, vertical: bool = True
) -> Event[EventPayload]:
    origin_campaign, source, country, region, lead_vertical = ORIGIN[lead]
    touch_source = {"webinar": "web_form", "directory": "directory", "tradeshow": "event"}
    snapshot = factories.lead_snapshot(
        email=f"{lead.lower()}@example.com",
        country=country,
        region=region,
        company=CompanySnapshot(name=f"{lead} Ltd", vertical=lead_vertical if vertical else None),
        source=source,
        campaign=origin_campaign,
        created_at=CREATED[lead],
    )
    payload = LeadIngestedV1(
        lead_id=LEADS[lead],
        change="created" if created else "merged",
        merged_on=None if created else "email",
        lead=snapshot,
        touchpoint=factories.touchpoint(
            touchpoint_id=_id(name),
            type="form_submission",
            door="form",
            source=touch_source[campaign],
            campaign=campaign,
            occurred_at=when,
        ),
        touchpoint_count=1,
    )
    return _event(payload, name)


def _grade(
    lead: str, name: str, grade: str, when: datetime, touch: str | None = None
) -> Event[EventPayload]:
    snapshot = factories.lead_snapshot(created_at=CREATED.get(lead, when))
    payload = LeadScoredV1(
        lead_id=LEADS[lead],
        grade=grade,
        fit_score=50.0,
        engagement_score=10.0,
        rulebook_version=1,
        trigger="touchpoint",
        touchpoint_id=_id(touch) if touch else None,
        lead=snapshot,
        scored_at=when,
    )
    return _event(payload, name)


def _route(
    lead: str,
    name: str,
    when: datetime,
    *,
    rep: str | None,
    outcome: str = "assigned",
    replaces: str | None = None,
) -> Event[EventPayload]:
    payload = LeadRoutedV1(
        lead_id=LEADS[lead],
        assignment_id=_id(name),
        outcome=outcome,
        grade="B",
        rep=RepRef(rep_id=rep, name=rep.upper()) if rep else None,
        team_id=TEAM[rep] if rep else None,
        program_id=None if rep else "nurture-q1",
        rule="territory" if rep else "nurture",
        explanation="scenario",
        sla_due_at=when + timedelta(days=1) if rep else None,
        reassignment_of=_id(replaces) if replaces else None,
        routed_at=when,
    )
    return _event(payload, name)


def _sla(
    lead: str, name: str, assignment: str, status: str, *, when: datetime, rep: str
) -> Event[EventPayload]:
    payload = LeadSlaV1(
        lead_id=LEADS[lead],
        assignment_id=_id(assignment),
        status=status,
        grade="B",
        rep_id=rep,
        team_id=TEAM[rep],
        due_at=when,
        occurred_at=when,
    )
    return _event(payload, name)


def _feedback(
    lead: str,
    name: str,
    status: str,
    when: datetime,
    *,
    reason: str | None = None,
    amount: str | None = None,
) -> Event[EventPayload]:
    payload = LeadFeedbackV1(
        lead_id=LEADS[lead],
        status=status,
        rejection_reason=reason,
        opportunity_id=f"opp-{lead}" if amount else None,
        amount=Decimal(amount) if amount else None,
        currency="EUR" if amount else None,
        source="hubspot",
        occurred_at=when,
    )
    return _event(payload, name)


def events() -> list[Event[EventPayload]]:
    """Every event of the scenario, grouped by lead, each lead's in time order."""
    return [
        # L1: three campaigns touch it before its opportunity; its vertical comes later.
        _touch("L1", "tp1a", at(1, 5, 9), campaign="webinar", created=True, vertical=False),
        _grade("L1", "g1a", "B", at(1, 5, 9, 1), touch="tp1a"),
        _route("L1", "a1", at(1, 5, 9, 2), rep="r1"),
        _feedback("L1", "f1a", "contacted", at(1, 5, 11, 2)),
        _sla("L1", "s1", "a1", "met", when=at(1, 5, 11, 2), rep="r1"),
        _feedback("L1", "f1b", "accepted", at(1, 6, 9, 2)),
        _touch("L1", "tp1b", at(1, 12, 9), campaign="tradeshow", created=False, vertical=False),
        _grade("L1", "g1b", "A", at(1, 12, 9, 1), touch="tp1b"),
        _touch("L1", "tp1c", at(1, 20, 9), campaign="directory", created=False),
        _feedback("L1", "f1c", "converted", at(1, 25, 9), amount="10000"),
        _feedback("L1", "f1d", "won", at(2, 10, 9), amount="12000"),
        # L2: breached, re-assigned, then rejected as not in market now.
        _touch("L2", "tp2a", at(1, 6, 10), campaign="webinar", created=True),
        _grade("L2", "g2a", "A", at(1, 6, 10, 1), touch="tp2a"),
        _route("L2", "a2", at(1, 6, 10, 2), rep="r2"),
        _sla("L2", "s2a", "a2", "warning", when=at(1, 6, 20), rep="r2"),
        _sla("L2", "s2b", "a2", "breached", when=at(1, 7, 10, 2), rep="r2"),
        _route("L2", "a2b", at(1, 7, 10, 5), rep="r1", replaces="a2"),
        _feedback("L2", "f2a", "contacted", at(1, 7, 14, 2)),
        _sla("L2", "s2c", "a2b", "met", when=at(1, 7, 14, 2), rep="r1"),
        _feedback("L2", "f2b", "rejected", at(1, 8, 10, 2), reason="no_timeframe"),
        # L3: an opportunity that was lost; a webinar touch after the opportunity.
        _touch("L3", "tp3a", at(1, 7, 12), campaign="directory", created=True),
        _grade("L3", "g3a", "B", at(1, 7, 12, 1), touch="tp3a"),
        _route("L3", "a3", at(1, 7, 12, 2), rep="r3"),
        _feedback("L3", "f3a", "contacted", at(1, 7, 13, 2)),
        _sla("L3", "s3", "a3", "met", when=at(1, 7, 13, 2), rep="r3"),
        _feedback("L3", "f3b", "accepted", at(1, 9, 12, 1)),
        _feedback("L3", "f3c", "converted", at(1, 15, 12), amount="5000"),
        _touch("L3", "tp3b", at(1, 20, 12), campaign="webinar", created=False),
        _feedback("L3", "f3d", "lost", at(2, 1, 9)),
        # L4: graded C, nurtured.
        _touch("L4", "tp4a", at(1, 8, 9), campaign="tradeshow", created=True),
        _grade("L4", "g4a", "C", at(1, 8, 9, 1), touch="tp4a"),
        _route("L4", "a4", at(1, 8, 9, 2), rep=None, outcome="nurture"),
        # L5: assigned, breached, escalated, never followed up.
        _touch("L5", "tp5a", at(1, 9, 9), campaign="directory", created=True),
        _grade("L5", "g5a", "B", at(1, 9, 9, 1), touch="tp5a"),
        _route("L5", "a5", at(1, 9, 9, 2), rep="r2"),
        _sla("L5", "s5a", "a5", "breached", when=at(1, 10, 9, 2), rep="r2"),
        _sla("L5", "s5b", "a5", "escalated", when=at(1, 10, 10), rep="r2"),
        # L6: the second quarter.
        _touch("L6", "tp6a", at(4, 2, 9), campaign="webinar", created=True),
        _grade("L6", "g6a", "D", at(4, 2, 9, 1), touch="tp6a"),
        # L7: never ingested.
        _grade("L7", "g7a", "A", at(1, 10, 9)),
        _feedback("L7", "f7a", "contacted", at(1, 10, 10)),
        # L8: rejected as the wrong target.
        _touch("L8", "tp8a", at(2, 2, 9), campaign="webinar", created=True),
        _grade("L8", "g8a", "A", at(2, 2, 9, 1), touch="tp8a"),
        _route("L8", "a8", at(2, 2, 9, 2), rep="r1"),
        _feedback("L8", "f8a", "contacted", at(2, 2, 9, 32)),
        _sla("L8", "s8", "a8", "met", when=at(2, 2, 9, 32), rep="r1"),
        _feedback("L8", "f8b", "rejected", at(2, 3, 9), reason="wrong_target"),
        # L9: rejected as bad data on first touch.
        _touch("L9", "tp9a", at(2, 3, 10), campaign="directory", created=True),
        _grade("L9", "g9a", "B", at(2, 3, 10, 1), touch="tp9a"),
        _route("L9", "a9", at(2, 3, 10, 2), rep="r3"),
        _feedback("L9", "f9a", "rejected", at(2, 3, 12, 2), reason="bad_data"),
        _sla("L9", "s9", "a9", "met", when=at(2, 3, 12, 2), rep="r3"),
    ]


def facts(scenario: list[Event[EventPayload]] | None = None) -> Facts:
    """The scenario's events as the read model's records, without a database."""
    touchpoints, grades, assignments, sla, feedback = [], [], [], [], []
    for event in scenario if scenario is not None else events():
        data = event.data
        if isinstance(data, LeadIngestedV1):
            touchpoints.append(
                TouchpointRecord(
                    touchpoint_id=data.touchpoint.touchpoint_id,
                    lead_id=data.lead_id,
                    created=data.change == "created",
                    type=data.touchpoint.type,
                    source=data.touchpoint.source,
                    campaign=data.touchpoint.campaign,
                    occurred_at=data.touchpoint.occurred_at,
                    lead_created_at=data.lead.created_at,
                    lead_source=data.lead.source,
                    lead_campaign=data.lead.campaign,
                    country=data.lead.country,
                    region=data.lead.region,
                    vertical=data.lead.company.vertical,
                )
            )
        elif isinstance(data, LeadScoredV1):
            grades.append(
                GradeRecord(event.id, data.lead_id, data.grade, data.scored_at, data.touchpoint_id)
            )
        elif isinstance(data, LeadRoutedV1):
            assignments.append(
                AssignmentRecord(
                    assignment_id=data.assignment_id,
                    lead_id=data.lead_id,
                    outcome=data.outcome,
                    routed_at=data.routed_at,
                    rep_id=data.rep.rep_id if data.rep else None,
                    team_id=data.team_id,
                    reassignment_of=data.reassignment_of,
                    sla_due_at=data.sla_due_at,
                    rep_name=data.rep.name if data.rep else None,
                )
            )
        elif isinstance(data, LeadSlaV1):
            sla.append(
                SlaRecord(
                    event_id=event.id,
                    lead_id=data.lead_id,
                    assignment_id=data.assignment_id,
                    status=data.status,
                    due_at=data.due_at,
                    occurred_at=data.occurred_at,
                    rep_id=data.rep_id,
                    team_id=data.team_id,
                )
            )
        elif isinstance(data, LeadFeedbackV1):
            feedback.append(
                FeedbackRecord(
                    event_id=event.id,
                    lead_id=data.lead_id,
                    status=data.status,
                    occurred_at=data.occurred_at,
                    rejection_reason=data.rejection_reason,
                    amount=data.amount,
                )
            )
    return Facts(
        touchpoints=tuple(touchpoints),
        grades=tuple(grades),
        assignments=tuple(assignments),
        sla=tuple(sla),
        feedback=tuple(feedback),
    )
