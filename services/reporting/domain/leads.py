"""Each lead's story, derived from the facts: who it is, how far it went, who owns it.

Every rule here is a function of the *set* of facts, never of the order they arrived in:
"latest" and "first" are by the time the event carries, ties broken by the event's id.
That is what makes the numbers the same whatever the interleaving of the topics.

A lead is known once at least one of its LeadIngestedV1 events is in; facts about a lead
that is not known yet (feedback that overtook its ingested event) wait and count from then.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from services.reporting.domain.records import (
    AssignmentRecord,
    Facts,
    FeedbackRecord,
    GradeRecord,
    SlaRecord,
    TouchpointRecord,
)

MQL_GRADES = frozenset({"A", "B"})
# Feedback that shows a rep got back to the lead: the end of "speed to first touch".
FOLLOW_UP = frozenset({"contacted", "accepted", "rejected", "converted"})
STAGES = ("ingested", "mql", "accepted", "opportunity", "won")
RECYCLED_REASON = "no_timeframe"
NO_CAMPAIGN = "(none)"


@dataclass(frozen=True, slots=True)
class Lead:
    lead_id: UUID
    created_at: datetime
    source: str | None
    campaign: str | None
    country: str | None
    region: str | None
    vertical: str | None
    # In time order (occurred_at, then touchpoint id).
    touchpoints: tuple[TouchpointRecord, ...]
    grade: str | None  # the latest grade
    # Stage times, cumulative: a lead that reached a later stage passed the earlier ones.
    mql_at: datetime | None
    accepted_at: datetime | None
    opportunity_at: datetime | None
    won_at: datetime | None
    mql_touchpoint_id: UUID | None  # the touchpoint the first A/B grade was given for
    pipeline: Decimal  # the opportunity's amount
    revenue: Decimal  # the won deal's amount
    first_assigned_at: datetime | None  # first assignment to a rep
    first_touch_at: datetime | None  # first follow-up feedback
    team_id: str | None  # owner: the latest assignment to a rep or a team queue
    rep_id: str | None
    waiting: bool  # with a rep now, and no follow-up yet
    rejection_reason: str | None  # reason of the latest rejection, if ever rejected
    assignments: tuple[AssignmentRecord, ...]
    sla: tuple[SlaRecord, ...]

    def stage_at(self, stage: str) -> datetime | None:
        return {
            "ingested": self.created_at,
            "mql": self.mql_at,
            "accepted": self.accepted_at,
            "opportunity": self.opportunity_at,
            "won": self.won_at,
        }[stage]

    @property
    def recycled(self) -> bool:
        return self.rejection_reason == RECYCLED_REASON

    @property
    def speed_to_first_touch(self) -> float | None:
        """Seconds from the first assignment to a rep to the first follow-up (never < 0)."""
        if self.first_assigned_at is None or self.first_touch_at is None:
            return None
        return max((self.first_touch_at - self.first_assigned_at).total_seconds(), 0.0)

    @property
    def campaign_label(self) -> str:
        return self.campaign or NO_CAMPAIGN


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def _feedback_key(record: FeedbackRecord) -> tuple[datetime, str]:
    return (record.occurred_at, record.event_id)


def _latest_with_amount(records: list[FeedbackRecord]) -> Decimal | None:
    with_amount = [record for record in records if record.amount is not None]
    if not with_amount:
        return None
    return max(with_amount, key=_feedback_key).amount


def _attribute(touchpoints: list[TouchpointRecord], name: str) -> str | None:
    """The latest snapshot's value that is set (enrichment fills fields in later)."""
    for touchpoint in reversed(touchpoints):
        value: str | None = getattr(touchpoint, name)
        if value is not None:
            return value
    return None


def _origin(touchpoints: list[TouchpointRecord]) -> tuple[str | None, str | None]:
    """Source and campaign of the first submission: the creating event's snapshot says."""
    creating = [touchpoint for touchpoint in touchpoints if touchpoint.created]
    first = creating[0] if creating else touchpoints[0]
    source = first.lead_source or first.source
    campaign = first.lead_campaign if first.lead_source or first.lead_campaign else first.campaign
    return source, campaign


def build_lead(
    touchpoints: list[TouchpointRecord],
    grades: list[GradeRecord],
    assignments: list[AssignmentRecord],
    sla: list[SlaRecord],
    feedback: list[FeedbackRecord],
) -> Lead:
    """One lead from its facts (touchpoints must not be empty)."""
    touchpoints = sorted(touchpoints, key=lambda t: (t.occurred_at, str(t.touchpoint_id)))
    grades = sorted(grades, key=lambda g: (g.scored_at, g.event_id))
    assignments = sorted(assignments, key=lambda a: (a.routed_at, str(a.assignment_id)))
    sla = sorted(sla, key=lambda s: (s.occurred_at, s.event_id))
    feedback = sorted(feedback, key=_feedback_key)
    creating = [touchpoint for touchpoint in touchpoints if touchpoint.created]
    created_at = (creating[0] if creating else touchpoints[0]).lead_created_at
    source, campaign = _origin(touchpoints)

    by_status: dict[str, list[FeedbackRecord]] = defaultdict(list)
    for record in feedback:
        by_status[record.status].append(record)
    first_mql = next((grade for grade in grades if grade.grade in MQL_GRADES), None)

    # Won: a won feedback not overturned by a later "lost".
    outcomes = by_status["won"] + by_status["lost"]
    last_outcome = max(outcomes, key=_feedback_key) if outcomes else None
    won_raw = (
        by_status["won"][0].occurred_at
        if last_outcome is not None and last_outcome.status == "won"
        else None
    )
    won_at = won_raw
    opportunity_at = _earliest(
        by_status["converted"][0].occurred_at if by_status["converted"] else None, won_at
    )
    accepted_at = _earliest(
        by_status["accepted"][0].occurred_at if by_status["accepted"] else None, opportunity_at
    )
    mql_at = _earliest(first_mql.scored_at if first_mql else None, accepted_at)

    pipeline = Decimal(0)
    if opportunity_at is not None:
        pipeline = (
            _latest_with_amount(by_status["converted"])
            or _latest_with_amount(by_status["won"])
            or Decimal(0)
        )
    revenue = Decimal(0)
    if won_at is not None:
        revenue = _latest_with_amount(by_status["won"]) or pipeline

    to_rep = [a for a in assignments if a.outcome == "assigned"]
    owned = [a for a in assignments if a.outcome in ("assigned", "queued")]
    owner = owned[-1] if owned else None
    follow_ups = [record for record in feedback if record.status in FOLLOW_UP]
    rejections = by_status["rejected"]
    return Lead(
        lead_id=touchpoints[0].lead_id,
        created_at=created_at,
        source=source,
        campaign=campaign,
        country=_attribute(touchpoints, "country"),
        region=_attribute(touchpoints, "region"),
        vertical=_attribute(touchpoints, "vertical"),
        touchpoints=tuple(touchpoints),
        grade=grades[-1].grade if grades else None,
        mql_at=mql_at,
        accepted_at=accepted_at,
        opportunity_at=opportunity_at,
        won_at=won_at,
        mql_touchpoint_id=first_mql.touchpoint_id if first_mql else None,
        pipeline=pipeline,
        revenue=revenue,
        first_assigned_at=to_rep[0].routed_at if to_rep else None,
        first_touch_at=follow_ups[0].occurred_at if follow_ups else None,
        team_id=owner.team_id if owner else None,
        rep_id=owner.rep_id if owner and owner.outcome == "assigned" else None,
        waiting=bool(assignments) and assignments[-1].outcome == "assigned" and not follow_ups,
        rejection_reason=rejections[-1].rejection_reason if rejections else None,
        assignments=tuple(assignments),
        sla=tuple(sla),
    )


def build_leads(facts: Facts) -> list[Lead]:
    """Every known lead (one with an ingested event), in creation order."""
    touchpoints: dict[UUID, list[TouchpointRecord]] = defaultdict(list)
    grades: dict[UUID, list[GradeRecord]] = defaultdict(list)
    assignments: dict[UUID, list[AssignmentRecord]] = defaultdict(list)
    sla: dict[UUID, list[SlaRecord]] = defaultdict(list)
    feedback: dict[UUID, list[FeedbackRecord]] = defaultdict(list)
    for touchpoint in facts.touchpoints:
        touchpoints[touchpoint.lead_id].append(touchpoint)
    for grade in facts.grades:
        grades[grade.lead_id].append(grade)
    for assignment in facts.assignments:
        assignments[assignment.lead_id].append(assignment)
    for clock in facts.sla:
        sla[clock.lead_id].append(clock)
    for record in facts.feedback:
        feedback[record.lead_id].append(record)
    leads = [
        build_lead(
            touchpoints[lead_id],
            grades.get(lead_id, []),
            assignments.get(lead_id, []),
            sla.get(lead_id, []),
            feedback.get(lead_id, []),
        )
        for lead_id in touchpoints
    ]
    return sorted(leads, key=lambda lead: (lead.created_at, str(lead.lead_id)))
