"""Follow-up: speed to first touch, SLA compliance, breaches, re-assignments, leads waiting.

Speed to first touch runs from a lead's first assignment to a rep to its first follow-up
feedback (contacted, accepted, rejected or converted). SLA figures are per assignment: an
assignment that was ever breached counts as breached, else one reported met counts as met;
compliance is met / (met + breached). The team and rep filters pick SLA clocks by the rep and
team that held them (the assignment's), not by the lead's current owner.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from uuid import UUID

from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import Lead
from services.reporting.domain.periods import week_of
from services.reporting.domain.stats import median, percentile, ratio

OLDEST_SHOWN = 10


@dataclass(frozen=True, slots=True)
class WaitingLead:
    lead_id: UUID
    assigned_at: datetime
    waiting_seconds: float
    rep_id: str | None
    team_id: str | None


@dataclass(frozen=True, slots=True)
class FollowUp:
    assigned: int  # leads assigned to a rep
    touched: int  # of which followed up
    speed_median_seconds: float | None
    speed_p90_seconds: float | None
    sla_met: int
    sla_breached: int
    sla_compliance: float | None
    sla_warnings: int
    escalations: int
    reassignments: int
    waiting: int
    waiting_median_seconds: float | None
    waiting_longest_seconds: float | None
    oldest_waiting: list[WaitingLead]


@dataclass(frozen=True, slots=True)
class SpeedWeek:
    week: date  # Monday of the week of the first assignment
    assigned: int
    touched: int
    median_seconds: float | None
    p90_seconds: float | None


def _clocks(leads: list[Lead], filters: Filters) -> dict[UUID, set[str]]:
    """Statuses per assignment, for the SLA clocks the team and rep filters pick."""
    rep_of = {a.assignment_id: a.rep_id for lead in leads for a in lead.assignments}
    team_of = {a.assignment_id: a.team_id for lead in leads for a in lead.assignments}
    statuses: dict[UUID, set[str]] = defaultdict(set)
    for lead in leads:
        for clock in lead.sla:
            rep = clock.rep_id or rep_of.get(clock.assignment_id)
            team = clock.team_id or team_of.get(clock.assignment_id)
            if filters.rep is not None and rep != filters.rep:
                continue
            if filters.team is not None and team != filters.team:
                continue
            statuses[clock.assignment_id].add(clock.status)
    return statuses


def follow_up(leads: list[Lead], filters: Filters, *, as_of: datetime) -> FollowUp:
    selected = filters.select(leads)
    assigned = [lead for lead in selected if lead.first_assigned_at is not None]
    speeds = [s for s in (lead.speed_to_first_touch for lead in assigned) if s is not None]

    clocks = _clocks(replace(filters, team=None, rep=None).select(leads), filters)
    breached = sum(1 for statuses in clocks.values() if "breached" in statuses)
    met = sum(1 for statuses in clocks.values() if "met" in statuses and "breached" not in statuses)

    waiting = sorted(
        (
            WaitingLead(
                lead_id=lead.lead_id,
                assigned_at=lead.first_assigned_at,
                waiting_seconds=max((as_of - lead.first_assigned_at).total_seconds(), 0.0),
                rep_id=lead.rep_id,
                team_id=lead.team_id,
            )
            for lead in selected
            if lead.waiting and lead.first_assigned_at is not None
        ),
        key=lambda waiter: (-waiter.waiting_seconds, str(waiter.lead_id)),
    )
    waits = [waiter.waiting_seconds for waiter in waiting]
    return FollowUp(
        assigned=len(assigned),
        touched=len(speeds),
        speed_median_seconds=median(speeds),
        speed_p90_seconds=percentile(speeds, 0.9),
        sla_met=met,
        sla_breached=breached,
        sla_compliance=ratio(met, met + breached),
        sla_warnings=sum(1 for statuses in clocks.values() if "warning" in statuses),
        escalations=sum(1 for statuses in clocks.values() if "escalated" in statuses),
        reassignments=sum(
            1 for lead in selected for a in lead.assignments if a.reassignment_of is not None
        ),
        waiting=len(waiting),
        waiting_median_seconds=median(waits),
        waiting_longest_seconds=max(waits) if waits else None,
        oldest_waiting=waiting[:OLDEST_SHOWN],
    )


def speed_by_week(leads: list[Lead], filters: Filters) -> list[SpeedWeek]:
    """Speed to first touch per week of the first assignment, oldest week first."""
    weeks: dict[date, list[Lead]] = defaultdict(list)
    for lead in filters.select(leads):
        if lead.first_assigned_at is not None:
            weeks[week_of(lead.first_assigned_at)].append(lead)
    series = []
    for week in sorted(weeks):
        speeds = [s for s in (lead.speed_to_first_touch for lead in weeks[week]) if s is not None]
        series.append(
            SpeedWeek(
                week=week,
                assigned=len(weeks[week]),
                touched=len(speeds),
                median_seconds=median(speeds),
                p90_seconds=percentile(speeds, 0.9),
            )
        )
    return series
