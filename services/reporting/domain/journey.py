"""One lead's journey, and the most recent leads: where each lead came from, its grade, who
has it, its follow-up clock and what sales said.

Derived from the same facts and the same rules as every figure (:mod:`.leads`): the owner
is the latest assignment to a rep or a team queue, "latest" is by the time the events carry.

A clock's status, per assignment, follows the SLA figures: ``breached`` once it was ever
breached (re-assignment and escalation follow a breach), else ``met`` once reported met,
else ``warning`` once warned, else ``running`` while the assignment has a deadline; no
deadline, no clock (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import STAGES, Lead, build_lead
from services.reporting.domain.records import AssignmentRecord, Facts, FeedbackRecord, SlaRecord

RECENT_SHOWN = 20


def sla_status(assignment: AssignmentRecord, clocks: tuple[SlaRecord, ...]) -> str | None:
    statuses = {clock.status for clock in clocks if clock.assignment_id == assignment.assignment_id}
    for status in ("breached", "met", "warning"):
        if status in statuses:
            return status
    return "running" if assignment.sla_due_at is not None else None


def stage_of(lead: Lead) -> str:
    """The furthest funnel stage the lead reached."""
    reached = [stage for stage in STAGES if lead.stage_at(stage) is not None]
    return reached[-1] if reached else "ingested"


@dataclass(frozen=True, slots=True)
class LeadSummary:
    """A row of the recent leads: origin, grade, owner and follow-up clock."""

    lead_id: UUID
    created_at: datetime
    source: str | None
    campaign: str | None
    grade: str | None
    stage: str  # ingested | mql | accepted | opportunity | won
    outcome: str | None  # of the latest assignment: assigned | nurture | queued
    rep_id: str | None
    rep_name: str | None
    team_id: str | None
    sla_due_at: datetime | None  # of the latest assignment
    sla_status: str | None
    rejection_reason: str | None


def summary(lead: Lead) -> LeadSummary:
    latest = lead.assignments[-1] if lead.assignments else None
    owner = next(
        (a for a in reversed(lead.assignments) if a.outcome in ("assigned", "queued")), None
    )
    return LeadSummary(
        lead_id=lead.lead_id,
        created_at=lead.created_at,
        source=lead.source,
        campaign=lead.campaign,
        grade=lead.grade,
        stage=stage_of(lead),
        outcome=latest.outcome if latest else None,
        rep_id=lead.rep_id,
        rep_name=owner.rep_name if owner is not None and lead.rep_id is not None else None,
        team_id=lead.team_id,
        sla_due_at=latest.sla_due_at if latest else None,
        sla_status=sla_status(latest, lead.sla) if latest else None,
        rejection_reason=lead.rejection_reason,
    )


def recent_leads(
    leads: list[Lead], filters: Filters, *, limit: int = RECENT_SHOWN
) -> list[LeadSummary]:
    """The latest created leads the filters select, newest first."""
    selected = sorted(
        filters.select(leads), key=lambda lead: (lead.created_at, str(lead.lead_id)), reverse=True
    )
    return [summary(lead) for lead in selected[:limit]]


@dataclass(frozen=True, slots=True)
class TouchpointStep:
    touchpoint_id: UUID
    occurred_at: datetime
    type: str
    source: str
    campaign: str | None


@dataclass(frozen=True, slots=True)
class GradeStep:
    scored_at: datetime
    grade: str


@dataclass(frozen=True, slots=True)
class AssignmentStep:
    assignment_id: UUID
    routed_at: datetime
    outcome: str
    rep_id: str | None
    rep_name: str | None
    team_id: str | None
    reassignment_of: UUID | None
    sla_due_at: datetime | None
    sla_status: str | None


@dataclass(frozen=True, slots=True)
class FeedbackStep:
    occurred_at: datetime
    status: str
    rejection_reason: str | None
    amount: Decimal | None


@dataclass(frozen=True, slots=True)
class LeadJourney:
    lead: LeadSummary
    country: str | None
    region: str | None
    vertical: str | None
    mql_at: datetime | None
    accepted_at: datetime | None
    opportunity_at: datetime | None
    won_at: datetime | None
    pipeline: Decimal
    revenue: Decimal
    speed_to_first_touch_seconds: float | None
    touchpoints: list[TouchpointStep]
    grades: list[GradeStep]
    assignments: list[AssignmentStep]
    feedback: list[FeedbackStep]


def _feedback_key(record: FeedbackRecord) -> tuple[datetime, str]:
    return (record.occurred_at, record.event_id)


def journey(facts: Facts) -> LeadJourney | None:
    """The journey of the one lead ``facts`` are about; None until its ingested event is in."""
    if not facts.touchpoints:
        return None
    lead = build_lead(
        list(facts.touchpoints),
        list(facts.grades),
        list(facts.assignments),
        list(facts.sla),
        list(facts.feedback),
    )
    return LeadJourney(
        lead=summary(lead),
        country=lead.country,
        region=lead.region,
        vertical=lead.vertical,
        mql_at=lead.mql_at,
        accepted_at=lead.accepted_at,
        opportunity_at=lead.opportunity_at,
        won_at=lead.won_at,
        pipeline=lead.pipeline,
        revenue=lead.revenue,
        speed_to_first_touch_seconds=lead.speed_to_first_touch,
        touchpoints=[
            TouchpointStep(t.touchpoint_id, t.occurred_at, t.type, t.source, t.campaign)
            for t in lead.touchpoints
        ],
        grades=[
            GradeStep(g.scored_at, g.grade)
            for g in sorted(facts.grades, key=lambda g: (g.scored_at, g.event_id))
        ],
        assignments=[
            AssignmentStep(
                assignment_id=a.assignment_id,
                routed_at=a.routed_at,
                outcome=a.outcome,
                rep_id=a.rep_id,
                rep_name=a.rep_name,
                team_id=a.team_id,
                reassignment_of=a.reassignment_of,
                sla_due_at=a.sla_due_at,
                sla_status=sla_status(a, lead.sla),
            )
            for a in lead.assignments
        ],
        feedback=[
            FeedbackStep(f.occurred_at, f.status, f.rejection_reason, f.amount)
            for f in sorted(facts.feedback, key=_feedback_key)
        ],
    )
