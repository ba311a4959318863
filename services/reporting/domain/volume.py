"""Lead volume: new leads against merged touchpoints, and the grade mix."""

from __future__ import annotations

from dataclasses import dataclass

from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import Lead

GRADES = ("A", "B", "C", "D")
UNGRADED = "ungraded"


@dataclass(frozen=True, slots=True)
class GradeCount:
    grade: str
    leads: int


@dataclass(frozen=True, slots=True)
class Volume:
    leads: int  # leads created in the period
    touchpoints: int  # touchpoints that occurred in the period
    new_touchpoints: int  # of which created a lead
    merged_touchpoints: int  # of which were a known person coming back
    grades: list[GradeCount]  # latest grade of the period's leads


def volume(leads: list[Lead], filters: Filters) -> Volume:
    selected = filters.select(leads)
    # Touchpoints count by when they occurred, on leads matching every other filter.
    touchpoints = [
        touchpoint
        for lead in filters.without_period().select(leads)
        for touchpoint in lead.touchpoints
        if filters.period.contains(touchpoint.occurred_at)
    ]
    new = sum(1 for touchpoint in touchpoints if touchpoint.created)
    counts = dict.fromkeys((*GRADES, UNGRADED), 0)
    for lead in selected:
        counts[lead.grade if lead.grade in counts else UNGRADED] += 1
    return Volume(
        leads=len(selected),
        touchpoints=len(touchpoints),
        new_touchpoints=new,
        merged_touchpoints=len(touchpoints) - new,
        grades=[GradeCount(grade, count) for grade, count in counts.items()],
    )
