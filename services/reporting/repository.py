"""Every query of the reporting service: writing facts, reading them back as domain records,
and the costs and targets people enter."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from services.reporting.domain.records import (
    AssignmentRecord,
    CostRecord,
    Facts,
    FeedbackRecord,
    GradeRecord,
    SlaRecord,
    TargetRecord,
    TouchpointRecord,
)
from services.reporting.models import (
    FACT_TABLES,
    AssignmentFact,
    CampaignCost,
    FeedbackFact,
    GradeFact,
    ReportingModel,
    SlaFact,
    Target,
    TouchpointFact,
)
from shared.db.bulk import upsert_rows
from shared.db.rows import table_of

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> int:
    return int((amount / CENT).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_cents(cents: int) -> Decimal:
    return Decimal(cents) * CENT


# ---------------------------------------------------------------------------- facts


def add_facts(
    *, session: Session, model: type[ReportingModel], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert the facts in one statement, each unless a row with its key is already there
    (or comes earlier in ``rows``).

    The consumer already skips event ids it has processed; this also makes a fact that
    reaches the read model twice by another road (a rebuild running beside the live
    consumer, an event re-published under a new id) a no-op.
    """
    upsert_rows(session, table_of(model), rows)


def clear_facts(*, session: Session) -> None:
    """Empty every fact table (costs and targets are people's input: they stay)."""
    for model in FACT_TABLES:
        session.execute(delete(model))


def load_facts(*, session: Session, lead_id: uuid.UUID | None = None) -> Facts:
    """Every fact, as domain records (plain rows, no ORM objects: this reads them all); with
    ``lead_id``, only that lead's (by the lead id index)."""

    def rows(model: type[ReportingModel]) -> Any:
        table = table_of(model)
        query = select(table)
        if lead_id is not None:
            query = query.where(table.c.lead_id == lead_id)
        return session.execute(query)

    touchpoints = tuple(
        TouchpointRecord(
            touchpoint_id=row.touchpoint_id,
            lead_id=row.lead_id,
            created=row.change == "created",
            type=row.type,
            source=row.source,
            campaign=row.campaign,
            occurred_at=row.occurred_at,
            lead_created_at=row.lead_created_at,
            lead_source=row.lead_source,
            lead_campaign=row.lead_campaign,
            country=row.country,
            region=row.region,
            vertical=row.vertical,
        )
        for row in rows(TouchpointFact)
    )
    grades = tuple(
        GradeRecord(
            event_id=row.event_id,
            lead_id=row.lead_id,
            grade=row.grade,
            scored_at=row.scored_at,
            touchpoint_id=row.touchpoint_id,
        )
        for row in rows(GradeFact)
    )
    assignments = tuple(
        AssignmentRecord(
            assignment_id=row.assignment_id,
            lead_id=row.lead_id,
            outcome=row.outcome,
            routed_at=row.routed_at,
            rep_id=row.rep_id,
            team_id=row.team_id,
            reassignment_of=row.reassignment_of,
            sla_due_at=row.sla_due_at,
            rep_name=row.rep_name,
        )
        for row in rows(AssignmentFact)
    )
    sla = tuple(
        SlaRecord(
            event_id=row.event_id,
            lead_id=row.lead_id,
            assignment_id=row.assignment_id,
            status=row.status,
            due_at=row.due_at,
            occurred_at=row.occurred_at,
            rep_id=row.rep_id,
            team_id=row.team_id,
        )
        for row in rows(SlaFact)
    )
    feedback = tuple(
        FeedbackRecord(
            event_id=row.event_id,
            lead_id=row.lead_id,
            status=row.status,
            occurred_at=row.occurred_at,
            rejection_reason=row.rejection_reason,
            amount=from_cents(row.amount_cents) if row.amount_cents is not None else None,
        )
        for row in rows(FeedbackFact)
    )
    return Facts(
        touchpoints=touchpoints,
        grades=grades,
        assignments=assignments,
        sla=sla,
        feedback=feedback,
    )


def fact_rows(*, session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every fact row, sorted by key: what two read models must agree on to be the same."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for model in FACT_TABLES:
        table = table_of(model)
        keys = list(table.primary_key.columns)
        result = session.execute(select(table).order_by(*keys)).mappings()
        rows[table.name] = [dict(row) for row in result]
    return rows


# ---------------------------------------------------------------------------- costs


def put_cost(
    *, session: Session, campaign: str, quarter: str, amount: Decimal, note: str | None
) -> CampaignCost:
    now = datetime.now(UTC)
    row = session.get(CampaignCost, (campaign, quarter))
    if row is None:
        row = CampaignCost(campaign=campaign, quarter=quarter, amount_cents=0, updated_at=now)
    row.amount_cents = to_cents(amount)
    row.note = note
    row.updated_at = now
    session.add(row)
    return row


def delete_cost(*, session: Session, campaign: str, quarter: str) -> bool:
    row = session.get(CampaignCost, (campaign, quarter))
    if row is None:
        return False
    session.delete(row)
    return True


def list_costs(*, session: Session) -> list[CampaignCost]:
    query = select(CampaignCost).order_by(col(CampaignCost.quarter), col(CampaignCost.campaign))
    return list(session.execute(query).scalars())


def cost_records(*, session: Session) -> tuple[CostRecord, ...]:
    return tuple(
        CostRecord(campaign=row.campaign, quarter=row.quarter, amount=from_cents(row.amount_cents))
        for row in list_costs(session=session)
    )


# ---------------------------------------------------------------------------- targets


def put_target(
    *,
    session: Session,
    quarter: str,
    scope: str,
    scope_id: str,
    leads: int | None,
    mqls: int | None,
    conversion: float | None,
) -> Target:
    now = datetime.now(UTC)
    row = session.get(Target, (quarter, scope, scope_id))
    if row is None:
        row = Target(quarter=quarter, scope=scope, scope_id=scope_id, updated_at=now)
    row.leads = leads
    row.mqls = mqls
    row.conversion = conversion
    row.updated_at = now
    session.add(row)
    return row


def delete_target(*, session: Session, quarter: str, scope: str, scope_id: str) -> bool:
    row = session.get(Target, (quarter, scope, scope_id))
    if row is None:
        return False
    session.delete(row)
    return True


def list_targets(*, session: Session) -> list[Target]:
    query = select(Target).order_by(col(Target.quarter), col(Target.scope), col(Target.scope_id))
    return list(session.execute(query).scalars())


def target_records(*, session: Session) -> tuple[TargetRecord, ...]:
    return tuple(
        TargetRecord(
            quarter=row.quarter,
            scope=row.scope,
            scope_id=row.scope_id,
            leads=row.leads,
            mqls=row.mqls,
            conversion=row.conversion,
        )
        for row in list_targets(session=session)
    )
