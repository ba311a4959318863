"""The reporting service's doors: every metric as JSON and CSV, campaign costs, targets.

Every metric takes the same filters as query parameters: ``from`` and ``to`` (dates, both
inclusive) or ``quarter`` (``2026-Q1``), ``source``, ``campaign``, ``vertical``, ``country``,
``region``, ``team`` and ``rep``. ``/v1/metrics/<name>.csv`` is the same figure as CSV.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, model_validator

from services.reporting import repository
from services.reporting.domain import tables
from services.reporting.domain.attribution import MODELS, Attribution, attribute
from services.reporting.domain.filters import Filters
from services.reporting.domain.followup import FollowUp, SpeedWeek, follow_up, speed_by_week
from services.reporting.domain.funnel import Funnel, funnel
from services.reporting.domain.journey import (
    RECENT_SHOWN,
    LeadJourney,
    LeadSummary,
    journey,
    recent_leads,
)
from services.reporting.domain.leads import Lead, build_leads
from services.reporting.domain.loop import Loop, loop
from services.reporting.domain.periods import Period, quarter_period
from services.reporting.domain.report import Dimensions, Report, dimensions, report
from services.reporting.domain.spend import CampaignSpend, spend
from services.reporting.domain.targets import TargetActual, targets
from services.reporting.domain.volume import Volume, volume
from shared.http import DbSession, ReadSession, problem

router = APIRouter(tags=["reporting"])

# What the API takes: quarters of the years 1000 to 2999. The domain reads any four digits,
# but the year 0 has no calendar and 9999-Q4 no end, and a quarter stored with a target must
# stay readable by every report after it.
QUARTER = r"^[12]\d{3}-Q[1-4]$"
# A count a target may set: the database column is a 32-bit integer.
MAX_COUNT = 2**31 - 1
Model = Literal["first_touch", "last_touch", "linear", "u_shaped", "w_shaped"]
assert set(MODELS) == set(Model.__args__)  # type: ignore[attr-defined]


def _invalid(location: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": tuple(location.split(".")), "msg": message, "type": "value_error"}]
    )


def query_filters(
    *,
    start: Annotated[
        date | None, Query(alias="from", description="First day of the period (UTC)")
    ] = None,
    end: Annotated[
        date | None, Query(alias="to", description="Last day of the period, included")
    ] = None,
    quarter: Annotated[
        str | None, Query(pattern=QUARTER, description="A quarter instead of from/to: 2026-Q1")
    ] = None,
    source: str | None = None,
    campaign: str | None = None,
    vertical: str | None = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="ISO 3166-1")] = None,
    region: Annotated[str | None, Query(description="ISO 3166-2, e.g. DE-BY")] = None,
    team: str | None = None,
    rep: str | None = None,
) -> Filters:
    """The filters every metric takes. The period selects leads by when they were created."""
    if quarter is not None and (start is not None or end is not None):
        raise _invalid("query.quarter", "give either a quarter or from/to, not both")
    if start is not None and end is not None and end < start:
        raise _invalid("query.to", "the period ends before it starts")
    if end is not None and end >= date.max:
        raise _invalid("query.to", "the period must end before the last day of the calendar")
    if quarter is not None:
        period = quarter_period(quarter)
    else:
        period = Period(
            datetime.combine(start, time(), UTC) if start else None,
            datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
        )
    return Filters(
        period=period,
        source=source,
        campaign=campaign,
        vertical=vertical,
        country=country,
        region=region,
        team=team,
        rep=rep,
    )


QueryFilters = Annotated[Filters, Depends(query_filters)]
AsOf = Annotated[
    datetime | None,
    Query(description="The moment leads still waiting are measured to; default: now"),
]
ModelQuery = Annotated[Model, Query(description="Attribution model for pipeline and revenue")]


def _as_of(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if value.tzinfo is None:
        raise _invalid("query.as_of", "give a time zone, e.g. 2026-04-01T09:00:00Z")
    return value


def _leads(session: ReadSession) -> list[Lead]:
    return build_leads(repository.load_facts(session=session))


Leads = Annotated[list[Lead], Depends(_leads)]


def _csv(name: str, table: tables.Table) -> Response:
    header, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}.csv"'},
    )


# ---------------------------------------------------------------------------- metrics


@router.get("/v1/metrics/volume", summary="Leads, new against merged touchpoints, grade mix")
def get_volume(leads: Leads, filters: QueryFilters) -> Volume:
    return volume(leads, filters)


@router.get("/v1/metrics/funnel", summary="Ingested, MQL, accepted, opportunity, won")
def get_funnel(leads: Leads, filters: QueryFilters) -> Funnel:
    return funnel(leads, filters)


@router.get(
    "/v1/metrics/follow-up",
    summary="Speed to first touch, SLA compliance, breaches, re-assignments, leads waiting",
)
def get_follow_up(leads: Leads, filters: QueryFilters, as_of: AsOf = None) -> FollowUp:
    return follow_up(leads, filters, as_of=_as_of(as_of))


@router.get("/v1/metrics/speed", summary="Speed to first touch, week by week")
def get_speed(leads: Leads, filters: QueryFilters) -> list[SpeedWeek]:
    return speed_by_week(leads, filters)


@router.get("/v1/metrics/loop", summary="Rejection reasons by campaign and source, recycled")
def get_loop(leads: Leads, filters: QueryFilters) -> Loop:
    return loop(leads, filters)


@router.get(
    "/v1/metrics/attribution",
    summary="Pipeline and revenue by campaign under each attribution model",
)
def get_attribution(
    leads: Leads, filters: QueryFilters, model: Annotated[Model | None, Query()] = None
) -> list[Attribution]:
    return [attribute(leads, filters, name) for name in MODELS if model in (None, name)]


@router.get(
    "/v1/metrics/campaigns",
    summary="Cost per lead, MQL and opportunity, and return on spend, per campaign",
)
def get_campaigns(
    leads: Leads, session: ReadSession, filters: QueryFilters, model: ModelQuery = "linear"
) -> list[CampaignSpend]:
    return spend(leads, repository.cost_records(session=session), filters, model=model)


@router.get("/v1/metrics/targets", summary="Quarterly targets against actuals")
def get_targets(leads: Leads, session: ReadSession, filters: QueryFilters) -> list[TargetActual]:
    return targets(leads, repository.target_records(session=session), filters)


@router.get("/v1/report", summary="Every metric at once (what the dashboard shows)")
def get_report(
    session: ReadSession,
    filters: QueryFilters,
    as_of: AsOf = None,
    model: ModelQuery = "linear",
) -> Report:
    return report(
        repository.load_facts(session=session),
        repository.cost_records(session=session),
        repository.target_records(session=session),
        filters,
        as_of=_as_of(as_of),
        model=model,
    )


@router.get("/v1/leads", summary="The latest created leads: origin, grade, owner, SLA clock")
def get_recent_leads(
    leads: Leads,
    filters: QueryFilters,
    limit: Annotated[int, Query(ge=1, le=500, description="How many, newest first")] = RECENT_SHOWN,
) -> list[LeadSummary]:
    return recent_leads(leads, filters, limit=limit)


@router.get(
    "/v1/leads/{lead_id}",
    summary="One lead's journey: source, campaign, grades, assignments, SLA, feedback",
    response_model=LeadJourney,
    responses={404: {"description": "No ingested event of this lead has been read yet"}},
)
def get_lead(lead_id: uuid.UUID, session: ReadSession) -> Any:
    found = journey(repository.load_facts(session=session, lead_id=lead_id))
    if found is None:
        return problem(404, "path.lead_id", f"no lead {lead_id} in the read model (yet)")
    return found


@router.get("/v1/dimensions", summary="The values each filter can take")
def get_dimensions(leads: Leads) -> Dimensions:
    return dimensions(leads)


@router.get(
    "/v1/metrics/{metric}.csv",
    summary="A metric as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def get_csv(
    *,
    metric: Literal[
        "volume", "funnel", "follow-up", "speed", "loop", "attribution", "campaigns", "targets"
    ],
    leads: Leads,
    session: ReadSession,
    filters: QueryFilters,
    as_of: AsOf = None,
    model: ModelQuery = "linear",
) -> Response:
    table: tables.Table
    if metric == "volume":
        table = tables.volume_table(volume(leads, filters))
    elif metric == "funnel":
        table = tables.funnel_table(funnel(leads, filters))
    elif metric == "follow-up":
        table = tables.follow_up_table(follow_up(leads, filters, as_of=_as_of(as_of)))
    elif metric == "speed":
        table = tables.speed_table(speed_by_week(leads, filters))
    elif metric == "loop":
        table = tables.loop_table(loop(leads, filters))
    elif metric == "attribution":
        table = tables.attribution_table([attribute(leads, filters, name) for name in MODELS])
    elif metric == "campaigns":
        costs = repository.cost_records(session=session)
        table = tables.spend_table(spend(leads, costs, filters, model=model))
    else:
        goals = repository.target_records(session=session)
        table = tables.targets_table(targets(leads, goals, filters))
    return _csv(metric, table)


# ---------------------------------------------------------------------------- costs


class CostIn(BaseModel):
    amount: Decimal = Field(
        ge=0, max_digits=14, decimal_places=2, description="In the CRM's currency"
    )
    note: str | None = Field(default=None, max_length=500)


class CostOut(BaseModel):
    campaign: str
    quarter: str
    amount: float
    note: str | None
    updated_at: datetime


def _cost_out(row: Any) -> CostOut:
    return CostOut(
        campaign=row.campaign,
        quarter=row.quarter,
        amount=float(repository.from_cents(row.amount_cents)),
        note=row.note,
        updated_at=row.updated_at,
    )


CampaignPath = Annotated[str, Path(min_length=1, max_length=200)]
QuarterPath = Annotated[str, Path(pattern=QUARTER, description="2026-Q1")]


@router.put("/v1/costs/{campaign}/{quarter}", summary="Set what a campaign cost in a quarter")
def put_cost(
    campaign: CampaignPath, quarter: QuarterPath, body: CostIn, session: DbSession
) -> CostOut:
    row = repository.put_cost(
        session=session, campaign=campaign, quarter=quarter, amount=body.amount, note=body.note
    )
    return _cost_out(row)


@router.get("/v1/costs", summary="Every campaign cost entered")
def get_costs(session: ReadSession) -> list[CostOut]:
    return [_cost_out(row) for row in repository.list_costs(session=session)]


@router.delete(
    "/v1/costs/{campaign}/{quarter}", status_code=204, summary="Remove a campaign's cost"
)
def delete_cost(campaign: CampaignPath, quarter: QuarterPath, session: DbSession) -> Response:
    if not repository.delete_cost(session=session, campaign=campaign, quarter=quarter):
        return problem(404, "path.campaign", f"no cost of {campaign!r} in {quarter}")
    return Response(status_code=204)


# ---------------------------------------------------------------------------- targets


class TargetIn(BaseModel):
    leads: int | None = Field(
        default=None, ge=0, le=MAX_COUNT, description="Leads created in the quarter"
    )
    mqls: int | None = Field(default=None, ge=0, le=MAX_COUNT, description="Of which became MQLs")
    conversion: float | None = Field(
        default=None, ge=0, le=1, description="Lead to opportunity rate, 0..1"
    )

    @model_validator(mode="after")
    def _something(self) -> TargetIn:
        if self.leads is None and self.mqls is None and self.conversion is None:
            raise ValueError("set at least one of leads, mqls, conversion")
        return self


class TargetOut(BaseModel):
    quarter: str
    scope: str
    scope_id: str
    leads: int | None
    mqls: int | None
    conversion: float | None
    updated_at: datetime


Scope = Literal["campaign", "team"]


@router.put(
    "/v1/targets/{quarter}/{scope}/{scope_id}",
    summary="Set a campaign's or a team's target for a quarter",
)
def put_target(
    quarter: QuarterPath,
    scope: Scope,
    scope_id: CampaignPath,
    body: TargetIn,
    session: DbSession,
) -> TargetOut:
    row = repository.put_target(
        session=session,
        quarter=quarter,
        scope=scope,
        scope_id=scope_id,
        leads=body.leads,
        mqls=body.mqls,
        conversion=body.conversion,
    )
    return TargetOut.model_validate(row, from_attributes=True)


@router.get("/v1/targets", summary="Every target entered")
def get_target_list(session: ReadSession) -> list[TargetOut]:
    return [
        TargetOut.model_validate(row, from_attributes=True)
        for row in repository.list_targets(session=session)
    ]


@router.delete(
    "/v1/targets/{quarter}/{scope}/{scope_id}", status_code=204, summary="Remove a target"
)
def delete_target(
    quarter: QuarterPath, scope: Scope, scope_id: CampaignPath, session: DbSession
) -> Response:
    if not repository.delete_target(
        session=session, quarter=quarter, scope=scope, scope_id=scope_id
    ):
        return problem(404, "path.scope_id", f"no {scope} target of {scope_id!r} in {quarter}")
    return Response(status_code=204)
