"""The reporting service's tables. Its metadata is its own: no other service reads these.

The read model is a set of *facts*: one row per thing that happened, keyed by its natural id
(a touchpoint, an assignment) or by its event id. Rows are only ever inserted, never updated,
so the read model is the same set of rows whatever order the topics' events arrived in, and
a replay of every topic into empty tables rebuilds exactly the same rows. Everything a figure
needs (a lead's grade, its stage times, its owner) is derived from these facts by the pure
functions in :mod:`services.reporting.domain`.

The two tables people write through the API, ``campaign_costs`` and ``targets``, are not
facts from the topics: a rebuild leaves them alone.

No fact names a person: the leads are their ids, with source, campaign, country, region and
vertical, so an erasure (``leads.erased``) changes no fact and no figure. The erased lead ids
are kept in ``erased_leads`` (which a rebuild does not empty either).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import RuntimeTables
from shared.db.types import UtcDateTime
from shared.erasure import ErasureLedger


class ReportingModel(SQLModel, registry=registry()):
    """Base of every reporting table; a registry of its own keeps its metadata apart."""


class TouchpointFact(ReportingModel, table=True):
    """One LeadIngestedV1: a touchpoint, with the lead snapshot as it stood after it."""

    __tablename__ = "touchpoint_facts"

    touchpoint_id: uuid.UUID = Field(primary_key=True)
    event_id: str = Field(max_length=200)
    lead_id: uuid.UUID = Field(index=True)
    change: str = Field(max_length=20)  # created | merged
    type: str = Field(max_length=64)
    door: str = Field(max_length=20)
    source: str = Field(max_length=200)
    campaign: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    # The lead snapshot carried by the event.
    lead_created_at: datetime = Field(sa_type=UtcDateTime)
    lead_source: str | None = Field(default=None, max_length=200)
    lead_campaign: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=2)
    region: str | None = Field(default=None, max_length=20)
    vertical: str | None = Field(default=None, max_length=64)


class GradeFact(ReportingModel, table=True):
    """One LeadScoredV1."""

    __tablename__ = "grade_facts"

    event_id: str = Field(primary_key=True, max_length=200)
    lead_id: uuid.UUID = Field(index=True)
    grade: str = Field(max_length=1)
    touchpoint_id: uuid.UUID | None = None
    scored_at: datetime = Field(sa_type=UtcDateTime)


class AssignmentFact(ReportingModel, table=True):
    """One LeadRoutedV1: an assignment to a rep, to nurture, or to a team's queue."""

    __tablename__ = "assignment_facts"

    assignment_id: uuid.UUID = Field(primary_key=True)
    event_id: str = Field(max_length=200)
    lead_id: uuid.UUID = Field(index=True)
    outcome: str = Field(max_length=20)
    grade: str = Field(max_length=1)
    rep_id: str | None = Field(default=None, max_length=200)
    rep_name: str | None = Field(default=None, max_length=200)
    team_id: str | None = Field(default=None, max_length=200)
    rule: str = Field(max_length=64)
    sla_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    reassignment_of: uuid.UUID | None = None
    routed_at: datetime = Field(sa_type=UtcDateTime)


class SlaFact(ReportingModel, table=True):
    """One LeadSlaV1: the follow-up clock of an assignment moved."""

    __tablename__ = "sla_facts"

    event_id: str = Field(primary_key=True, max_length=200)
    lead_id: uuid.UUID = Field(index=True)
    assignment_id: uuid.UUID
    status: str = Field(max_length=20)
    rep_id: str | None = Field(default=None, max_length=200)
    team_id: str | None = Field(default=None, max_length=200)
    due_at: datetime = Field(sa_type=UtcDateTime)
    occurred_at: datetime = Field(sa_type=UtcDateTime)


class FeedbackFact(ReportingModel, table=True):
    """One LeadFeedbackV1. Amounts are kept in cents: exact on both databases."""

    __tablename__ = "feedback_facts"

    event_id: str = Field(primary_key=True, max_length=200)
    lead_id: uuid.UUID = Field(index=True)
    status: str = Field(max_length=20)
    rejection_reason: str | None = Field(default=None, max_length=32)
    opportunity_id: str | None = Field(default=None, max_length=200)
    amount_cents: int | None = Field(default=None, sa_type=BigInteger)
    currency: str | None = Field(default=None, max_length=3)
    source: str = Field(max_length=200)
    occurred_at: datetime = Field(sa_type=UtcDateTime)


class CampaignCost(ReportingModel, table=True):
    """What a campaign cost in one quarter, as marketing entered it."""

    __tablename__ = "campaign_costs"

    campaign: str = Field(primary_key=True, max_length=200)
    quarter: str = Field(primary_key=True, max_length=7)  # 2026-Q1
    amount_cents: int = Field(sa_type=BigInteger)
    note: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Target(ReportingModel, table=True):
    """A quarterly target of a campaign or a team; any of the three figures may be unset."""

    __tablename__ = "targets"

    quarter: str = Field(primary_key=True, max_length=7)
    scope: str = Field(primary_key=True, max_length=20)  # campaign | team
    scope_id: str = Field(primary_key=True, max_length=200)
    leads: int | None = None
    mqls: int | None = None
    conversion: float | None = None  # lead to opportunity, 0..1
    updated_at: datetime = Field(sa_type=UtcDateTime)


FACT_TABLES: tuple[type[ReportingModel], ...] = (
    TouchpointFact,
    GradeFact,
    AssignmentFact,
    SlaFact,
    FeedbackFact,
)

metadata = ReportingModel.metadata
TABLES = RuntimeTables.define(metadata)
ERASURES = ErasureLedger.define(metadata, TABLES)
