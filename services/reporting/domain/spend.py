"""What each campaign cost against what it yielded.

A campaign's leads, MQLs and opportunities are the leads it originated (first submission);
its pipeline and revenue are what the chosen attribution model credits it with. Costs are
entered per campaign and quarter; a period that covers part of a quarter takes that part of
its cost, in proportion to time. Return on spend is attributed revenue / cost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

from services.reporting.domain.attribution import attribute, cents
from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import NO_CAMPAIGN, Lead
from services.reporting.domain.periods import Period, quarter_bounds
from services.reporting.domain.records import CostRecord
from services.reporting.domain.stats import ratio


@dataclass(frozen=True, slots=True)
class CampaignSpend:
    campaign: str
    cost: float
    leads: int
    mqls: int
    opportunities: int
    pipeline: float
    revenue: float
    cost_per_lead: float | None
    cost_per_mql: float | None
    cost_per_opportunity: float | None
    return_on_spend: float | None


def cost_in(cost: CostRecord, period: Period) -> Fraction:
    """The part of a quarter's cost that falls in the period."""
    amount = Fraction(cost.amount)
    if not period.bounded:
        return amount
    start, end = quarter_bounds(cost.quarter)
    share = Fraction(
        int(period.overlap(start, end).total_seconds()), int((end - start).total_seconds())
    )
    return amount * share


def _per(cost: Fraction, count: int) -> float | None:
    return cents(cost / count) if count and cost else None


def spend(
    leads: list[Lead], costs: tuple[CostRecord, ...], filters: Filters, *, model: str
) -> list[CampaignSpend]:
    selected = filters.select(leads)
    spent: dict[str, Fraction] = defaultdict(Fraction)
    for cost in costs:
        if filters.campaign is None or cost.campaign == filters.campaign:
            spent[cost.campaign] += cost_in(cost, filters.period)
    originated: dict[str, list[Lead]] = defaultdict(list)
    for lead in selected:
        originated[lead.campaign or NO_CAMPAIGN].append(lead)
    credited = {row.campaign: row for row in attribute(leads, filters, model).campaigns}
    rows = []
    for campaign in sorted(set(spent) | set(originated) | set(credited)):
        members = originated.get(campaign, [])
        paid = spent.get(campaign, Fraction(0))
        mqls = sum(1 for lead in members if lead.mql_at is not None)
        opportunities = sum(1 for lead in members if lead.opportunity_at is not None)
        credit = credited.get(campaign)
        revenue = credit.revenue if credit else 0.0
        rows.append(
            CampaignSpend(
                campaign=campaign,
                cost=cents(paid),
                leads=len(members),
                mqls=mqls,
                opportunities=opportunities,
                pipeline=credit.pipeline if credit else 0.0,
                revenue=revenue,
                cost_per_lead=_per(paid, len(members)),
                cost_per_mql=_per(paid, mqls),
                cost_per_opportunity=_per(paid, opportunities),
                return_on_spend=(
                    round(r, 4) if (r := ratio(revenue, float(paid))) is not None else None
                ),
            )
        )
    return rows
