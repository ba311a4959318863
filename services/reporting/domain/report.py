"""Every figure at once, for one set of filters: what the dashboard shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.reporting.domain.attribution import MODELS, Attribution, attribute
from services.reporting.domain.filters import Filters
from services.reporting.domain.followup import FollowUp, SpeedWeek, follow_up, speed_by_week
from services.reporting.domain.funnel import Funnel, funnel
from services.reporting.domain.journey import LeadSummary, recent_leads
from services.reporting.domain.leads import Lead, build_leads
from services.reporting.domain.loop import Loop, loop
from services.reporting.domain.periods import quarter_of
from services.reporting.domain.records import CostRecord, Facts, TargetRecord
from services.reporting.domain.spend import CampaignSpend, spend
from services.reporting.domain.targets import TargetActual, targets
from services.reporting.domain.volume import Volume, volume


@dataclass(frozen=True, slots=True)
class Dimensions:
    """The values each filter can take, from the leads the read model knows."""

    quarters: list[str]  # quarters leads were created in
    sources: list[str]
    campaigns: list[str]
    verticals: list[str]
    countries: list[str]
    regions: list[str]
    teams: list[str]
    reps: list[str]


@dataclass(frozen=True, slots=True)
class Report:
    volume: Volume
    funnel: Funnel
    follow_up: FollowUp
    speed_by_week: list[SpeedWeek]
    loop: Loop
    attribution: list[Attribution]
    spend: list[CampaignSpend]
    targets: list[TargetActual]
    dimensions: Dimensions
    recent_leads: list[LeadSummary]


def dimensions(leads: list[Lead]) -> Dimensions:
    def values(found: set[str | None]) -> list[str]:
        return sorted(value for value in found if value)

    return Dimensions(
        quarters=sorted({quarter_of(lead.created_at) for lead in leads}),
        sources=values({lead.source for lead in leads}),
        campaigns=values({lead.campaign for lead in leads}),
        verticals=values({lead.vertical for lead in leads}),
        countries=values({lead.country for lead in leads}),
        regions=values({lead.region for lead in leads}),
        teams=values({a.team_id for lead in leads for a in lead.assignments}),
        reps=values({a.rep_id for lead in leads for a in lead.assignments}),
    )


def report(
    facts: Facts,
    costs: tuple[CostRecord, ...],
    target_records: tuple[TargetRecord, ...],
    filters: Filters,
    *,
    as_of: datetime,
    model: str = "linear",
) -> Report:
    leads = build_leads(facts)
    return Report(
        volume=volume(leads, filters),
        funnel=funnel(leads, filters),
        follow_up=follow_up(leads, filters, as_of=as_of),
        speed_by_week=speed_by_week(leads, filters),
        loop=loop(leads, filters),
        attribution=[attribute(leads, filters, name) for name in MODELS],
        spend=spend(leads, costs, filters, model=model),
        targets=targets(leads, target_records, filters),
        dimensions=dimensions(leads),
        recent_leads=recent_leads(leads, filters),
    )
