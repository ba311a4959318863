"""Pipeline and revenue attributed to campaigns over each lead's touchpoints.

The touchpoints that earn credit are the lead's touchpoints up to its opportunity (those
after it did not create it); if none came before, all of them. Each model splits a lead's
pipeline (its opportunity's amount) and revenue (its won amount) over them:

* ``first_touch``: all to the first; ``last_touch``: all to the last.
* ``linear``: equal shares.
* ``u_shaped``: 40% first, 40% last, 20% spread evenly over the ones between (one touchpoint:
  100%; two: 50/50).
* ``w_shaped``: 30% each to the first touch, the MQL touch and the opportunity touch, 10%
  spread evenly over the others; when every touchpoint is one of the three, the 10% goes to
  the three in equal parts. Shares of one touchpoint in two roles add up. The MQL touch is
  the touchpoint the first A/B grade was given for, else the last one before that grade;
  the opportunity touch is the last one that earns credit.

Shares are exact fractions; totals are rounded to cents only at the end. A touchpoint with no
campaign credits "(none)".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import NO_CAMPAIGN, Lead
from services.reporting.domain.records import TouchpointRecord

MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped")


@dataclass(frozen=True, slots=True)
class CampaignCredit:
    campaign: str
    opportunities: float  # share of opportunities credited
    pipeline: float
    revenue: float


@dataclass(frozen=True, slots=True)
class Attribution:
    model: str
    campaigns: list[CampaignCredit]  # by pipeline, largest first, then by name
    pipeline: float
    revenue: float


def credited(lead: Lead) -> list[TouchpointRecord]:
    """The touchpoints that earn credit for the lead's opportunity."""
    if lead.opportunity_at is None:
        return list(lead.touchpoints)
    before = [t for t in lead.touchpoints if t.occurred_at <= lead.opportunity_at]
    return before or list(lead.touchpoints)


def mql_index(lead: Lead, touchpoints: list[TouchpointRecord]) -> int:
    for index, touchpoint in enumerate(touchpoints):
        if touchpoint.touchpoint_id == lead.mql_touchpoint_id:
            return index
    if lead.mql_at is None:
        return len(touchpoints) - 1
    index = 0
    for position, touchpoint in enumerate(touchpoints):
        if touchpoint.occurred_at <= lead.mql_at:
            index = position
    return index


def weights(model: str, count: int, mql: int = 0) -> list[Fraction]:
    """Each touchpoint's share under a model; the shares add up to one."""
    if count < 1:
        raise ValueError("a lead has at least one touchpoint")
    shares = [Fraction(0)] * count
    if model == "first_touch":
        shares[0] = Fraction(1)
    elif model == "last_touch":
        shares[-1] = Fraction(1)
    elif model == "linear":
        shares = [Fraction(1, count)] * count
    elif model == "u_shaped":
        if count == 1:
            shares[0] = Fraction(1)
        elif count == 2:
            shares = [Fraction(1, 2)] * 2
        else:
            shares = [Fraction(1, 5) / (count - 2)] * count
            shares[0] = shares[-1] = Fraction(2, 5)
    elif model == "w_shaped":
        key = (0, mql, count - 1)
        others = [index for index in range(count) if index not in key]
        for index in key:
            shares[index] += Fraction(3, 10)
        if others:
            for index in others:
                shares[index] += Fraction(1, 10) / len(others)
        else:
            for index in key:
                shares[index] += Fraction(1, 30)
    else:
        raise ValueError(f"unknown attribution model {model!r}")
    return shares


def credits(lead: Lead, model: str) -> dict[str, Fraction]:
    """Share of the lead's opportunity per campaign under a model."""
    touchpoints = credited(lead)
    shares = weights(model, len(touchpoints), mql_index(lead, touchpoints))
    result: dict[str, Fraction] = defaultdict(Fraction)
    for touchpoint, share in zip(touchpoints, shares, strict=True):
        if share:
            result[touchpoint.campaign or NO_CAMPAIGN] += share
    return dict(result)


def cents(amount: Fraction) -> float:
    return float(round(amount, 2))


def attribute(leads: list[Lead], filters: Filters, model: str) -> Attribution:
    if model not in MODELS:
        raise ValueError(f"unknown attribution model {model!r}")
    opportunities: dict[str, Fraction] = defaultdict(Fraction)
    pipeline: dict[str, Fraction] = defaultdict(Fraction)
    revenue: dict[str, Fraction] = defaultdict(Fraction)
    for lead in filters.select(leads):
        if lead.opportunity_at is None:
            continue
        for campaign, share in credits(lead, model).items():
            opportunities[campaign] += share
            pipeline[campaign] += share * Fraction(lead.pipeline)
            revenue[campaign] += share * Fraction(lead.revenue)
    rows = [
        CampaignCredit(
            campaign=campaign,
            opportunities=float(round(opportunities[campaign], 4)),
            pipeline=cents(pipeline[campaign]),
            revenue=cents(revenue[campaign]),
        )
        for campaign in opportunities
    ]
    rows.sort(key=lambda row: (-row.pipeline, row.campaign))
    return Attribution(
        model=model,
        campaigns=rows,
        pipeline=cents(sum(pipeline.values(), Fraction(0))),
        revenue=cents(sum(revenue.values(), Fraction(0))),
    )
