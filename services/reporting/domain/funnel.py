"""The funnel: ingested, MQL, accepted, opportunity, won; conversion and time between stages.

A lead counts at a stage when it reached that stage or any later one (a CRM may report a
conversion with no "accepted" before it); its time at a stage is the earliest of that
stage's own event and the time it reached any later stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import STAGES, Lead
from services.reporting.domain.stats import median, ratio


@dataclass(frozen=True, slots=True)
class Stage:
    stage: str
    leads: int
    # From the previous stage to this one (None for the first stage).
    conversion: float | None
    median_seconds_from_previous: float | None


@dataclass(frozen=True, slots=True)
class Funnel:
    stages: list[Stage]
    overall_conversion: float | None  # ingested to won
    pipeline: float  # amount of the opportunities
    revenue: float  # amount won


def money(amount: Decimal) -> float:
    return float(round(amount, 2))


def funnel(leads: list[Lead], filters: Filters) -> Funnel:
    selected = filters.select(leads)
    stages: list[Stage] = []
    previous: str | None = None
    for stage in STAGES:
        reached = [lead for lead in selected if lead.stage_at(stage) is not None]
        conversion = None
        durations: list[float] = []
        if previous is not None:
            before = sum(1 for lead in selected if lead.stage_at(previous) is not None)
            conversion = ratio(len(reached), before)
            for lead in reached:
                start, end = lead.stage_at(previous), lead.stage_at(stage)
                if start is not None and end is not None:
                    durations.append(max((end - start).total_seconds(), 0.0))
        stages.append(Stage(stage, len(reached), conversion, median(durations)))
        previous = stage
    return Funnel(
        stages=stages,
        overall_conversion=ratio(stages[-1].leads, stages[0].leads),
        pipeline=money(sum((lead.pipeline for lead in selected), Decimal(0))),
        revenue=money(sum((lead.revenue for lead in selected), Decimal(0))),
    )
