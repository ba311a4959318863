"""Quarterly targets of campaigns and teams against what the quarter actually brought.

Actuals are the leads created in the target's quarter that belong to its campaign (origin)
or its team (owner), under every other filter; a period filter only chooses which quarters'
targets are shown. Conversion is lead to opportunity. Attainment is actual / target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import Lead
from services.reporting.domain.periods import Period, quarter_bounds
from services.reporting.domain.records import TargetRecord
from services.reporting.domain.stats import ratio


@dataclass(frozen=True, slots=True)
class TargetActual:
    quarter: str
    scope: str
    scope_id: str
    leads_target: int | None
    leads_actual: int
    leads_attainment: float | None
    mqls_target: int | None
    mqls_actual: int
    mqls_attainment: float | None
    conversion_target: float | None
    conversion_actual: float | None
    conversion_attainment: float | None


def _attainment(actual: float | None, target: float | None) -> float | None:
    if actual is None or target is None:
        return None
    value = ratio(actual, target)
    return round(value, 4) if value is not None else None


def targets(
    leads: list[Lead], records: tuple[TargetRecord, ...], filters: Filters
) -> list[TargetActual]:
    rows = []
    for target in sorted(records, key=lambda t: (t.quarter, t.scope, t.scope_id)):
        start, end = quarter_bounds(target.quarter)
        if filters.period.bounded and not filters.period.overlap(start, end):
            continue
        scoped = replace(filters, period=Period(start, end))
        if target.scope == "campaign":
            scoped = replace(scoped, campaign=target.scope_id)
        else:
            scoped = replace(scoped, team=target.scope_id)
        if (filters.campaign is not None and scoped.campaign != filters.campaign) or (
            filters.team is not None and scoped.team != filters.team
        ):
            continue  # the target is about another campaign or team than the one asked for
        members = scoped.select(leads)
        mqls = sum(1 for lead in members if lead.mql_at is not None)
        opportunities = sum(1 for lead in members if lead.opportunity_at is not None)
        conversion = ratio(opportunities, len(members))
        rows.append(
            TargetActual(
                quarter=target.quarter,
                scope=target.scope,
                scope_id=target.scope_id,
                leads_target=target.leads,
                leads_actual=len(members),
                leads_attainment=_attainment(len(members), target.leads),
                mqls_target=target.mqls,
                mqls_actual=mqls,
                mqls_attainment=_attainment(mqls, target.mqls),
                conversion_target=target.conversion,
                conversion_actual=round(conversion, 4) if conversion is not None else None,
                conversion_attainment=_attainment(conversion, target.conversion),
            )
        )
    return rows
