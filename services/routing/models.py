"""The routing service's tables. Its metadata is its own: no other service reads these.

Configuration (teams, territories, reps and their absences, named accounts, nurture
programs) and its audit log; the round-robin state (one row per team, one per rep in a
team); and the leads: the latest facts of each scored lead, its assignments (each with its
rule, explanation, skipped candidates, SLA clock and disposition), and every piece of
feedback received (pending until the lead has an assignment it applies to); the leads erased
on request (``erased_leads``), never routed again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Numeric, Text, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import RuntimeTables
from shared.db.bulk import copy_on_flush
from shared.db.types import UtcDateTime
from shared.erasure import ErasureLedger

ID_LENGTH = 64


class RoutingModel(SQLModel, registry=registry()):
    """Base of every routing table; a registry of its own keeps its metadata apart."""


# ---------------------------------------------------------------- configuration


class TeamRow(RoutingModel, table=True):
    __tablename__ = "teams"

    team_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    name: str | None = Field(default=None, max_length=200)
    # Territory ids covered (none: every territory) and verticals (none: every vertical).
    territory_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    verticals: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class TerritoryRow(RoutingModel, table=True):
    __tablename__ = "territories"

    territory_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    name: str | None = Field(default=None, max_length=200)
    country: str = Field(max_length=2)
    region: str | None = Field(default=None, max_length=10)
    postal_prefixes: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class RepRow(RoutingModel, table=True):
    __tablename__ = "reps"

    rep_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    team_id: str = Field(index=True, max_length=ID_LENGTH)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    crm_user_id: str | None = Field(default=None, index=True, max_length=200)
    time_zone: str = Field(default="UTC", max_length=64)
    # {"mon": ["09:00-17:00"], ...}: days not listed are not worked.
    working_hours: dict[str, list[str]] = Field(default_factory=dict, sa_type=JSON)
    # ISO dates the rep does not work, and a public-holiday calendar (DE, DE-BY, US-CA ...).
    holidays: list[str] = Field(default_factory=list, sa_type=JSON)
    holiday_calendar: str | None = Field(default=None, max_length=16)
    capacity: int = 25
    weight: int = 1
    active: bool = True
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class RepAbsenceRow(RoutingModel, table=True):
    __tablename__ = "rep_absences"

    id: int | None = Field(default=None, primary_key=True)
    rep_id: str = Field(index=True, max_length=ID_LENGTH)
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UtcDateTime)


class NamedAccountRow(RoutingModel, table=True):
    __tablename__ = "named_accounts"

    domain: str = Field(primary_key=True, max_length=255)
    rep_id: str = Field(index=True, max_length=ID_LENGTH)
    name: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class NurtureProgramRow(RoutingModel, table=True):
    __tablename__ = "nurture_programs"

    program_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    name: str | None = Field(default=None, max_length=200)
    grades: list[str] = Field(default_factory=list, sa_type=JSON)
    verticals: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ConfigChangeRow(RoutingModel, table=True):
    """The audit log: every change to the configuration, with what it was before and after."""

    __tablename__ = "config_changes"
    __table_args__ = (Index("ix_config_changes_entity", "entity", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    changed_at: datetime = Field(sa_type=UtcDateTime, index=True)
    actor: str = Field(max_length=200)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=255)
    # create | update | delete | out_of_office_on | out_of_office_off
    action: str = Field(max_length=32)
    via: str = Field(default="api", max_length=32)  # api | csv
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class SlaPolicyRow(RoutingModel, table=True):
    """The follow-up SLA policy: one row (id 1); absent means the defaults."""

    __tablename__ = "sla_policy"

    id: int = Field(default=1, primary_key=True)
    # Business hours to follow up, per grade ({"A": 8, "B": 40}); grades not listed: no clock.
    follow_up_hours: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    warning_fraction: float = 0.75
    max_reassignments: int = 2
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ConfigVersionRow(RoutingModel, table=True):
    """One row (id 1) whose ``version`` database triggers bump on every write to a
    configuration table (teams, territories, reps, rep_absences, named_accounts,
    nurture_programs, sla_policy): routing re-reads its configuration only when it moved
    (:mod:`services.routing.caching`)."""

    __tablename__ = "config_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_type=BigInteger)


# ---------------------------------------------------------------- round robin


class TeamRotationRow(RoutingModel, table=True):
    """A team's round-robin virtual time; locked (FOR UPDATE) while a lead is routed."""

    __tablename__ = "team_rotations"

    team_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    virtual_time: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class RotationPassRow(RoutingModel, table=True):
    __tablename__ = "rotation_passes"

    team_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    rep_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    pass_value: int = Field(sa_type=BigInteger)


# ---------------------------------------------------------------- leads


class RoutedLeadRow(RoutingModel, table=True):
    """The latest score of a lead, its state and its current assignment."""

    __tablename__ = "routed_leads"

    lead_id: uuid.UUID = Field(primary_key=True)
    grade: str = Field(max_length=1)
    previous_grade: str | None = Field(default=None, max_length=1)
    country: str | None = Field(default=None, max_length=2)
    region: str | None = Field(default=None, max_length=10)
    postal_code: str | None = Field(default=None, max_length=32)
    vertical: str | None = Field(default=None, max_length=64)
    domain: str | None = Field(default=None, max_length=255)
    scored_at: datetime = Field(sa_type=UtcDateTime, index=True)
    # open | nurturing | queued | closed; none before the first assignment.
    state: str | None = Field(default=None, max_length=16)
    current_assignment_id: uuid.UUID | None = None
    # Rejected for no timeframe and recycled to nurture: back to sales on a new touchpoint.
    recycled: bool = False
    updated_at: datetime = Field(sa_type=UtcDateTime)


# What counts in a rep's open load: an assignment to them, still open. One definition for
# the partial index, the count (repository.open_loads) and the kept loads (caching).
LOAD_STATE, LOAD_OUTCOME = "open", "assigned"
_OPEN_ASSIGNED = f"state = '{LOAD_STATE}' AND outcome = '{LOAD_OUTCOME}'"


_SLA_WARNS = "sla_status = 'running'"
_SLA_DUE = "sla_status IN ('running', 'warned')"


def counts_in_load(state: object, outcome: object) -> bool:
    return state == LOAD_STATE and outcome == LOAD_OUTCOME


class AssignmentRow(RoutingModel, table=True):
    """One routing decision of a lead: to a rep, a nurture program or a team queue."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_lead", "lead_id", "routed_at"),
        Index("ix_assignments_rep_state", "rep_id", "state"),
        # The SLA worker's clocks (repository.due_timers, next_timer): the running ones by
        # their warning, the running and warned ones by their deadline.
        Index(
            "ix_assignments_sla_warn",
            "sla_warn_at",
            postgresql_where=text(_SLA_WARNS),
            sqlite_where=text(_SLA_WARNS),
        ),
        Index(
            "ix_assignments_sla_due",
            "sla_due_at",
            postgresql_where=text(_SLA_DUE),
            sqlite_where=text(_SLA_DUE),
        ),
        # The load count of every decision (repository.open_loads): open, assigned only.
        Index(
            "ix_assignments_open_load",
            "rep_id",
            postgresql_where=text(_OPEN_ASSIGNED),
            sqlite_where=text(_OPEN_ASSIGNED),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    lead_id: uuid.UUID
    attempt: int = 1
    outcome: str = Field(max_length=16)
    grade: str = Field(max_length=1)
    rep_id: str | None = Field(default=None, max_length=ID_LENGTH)
    team_id: str | None = Field(default=None, max_length=ID_LENGTH)
    program_id: str | None = Field(default=None, max_length=ID_LENGTH)
    rule: str = Field(max_length=32)
    explanation: str = Field(sa_type=Text)
    skipped: list[dict[str, str]] = Field(default_factory=list, sa_type=JSON)
    reassignment_of: uuid.UUID | None = None
    routed_at: datetime = Field(sa_type=UtcDateTime)
    # open | nurturing | queued | closed | superseded
    state: str = Field(max_length=16)
    # Why it stopped being the lead's current assignment (sla_breach, pulled_from_nurture,
    # erased ...).
    ended_reason: str | None = Field(default=None, max_length=32)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # running | warned | met | late | breached | cancelled (lead erased); none when no clock.
    sla_status: str | None = Field(default=None, max_length=16)
    sla_warn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    sla_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    sla_settled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The latest disposition.
    feedback_status: str | None = Field(default=None, max_length=16)
    rejection_reason: str | None = Field(default=None, max_length=32)
    opportunity_id: str | None = Field(default=None, max_length=200)
    amount: Decimal | None = Field(default=None, sa_type=Numeric(20, 4))
    currency: str | None = Field(default=None, max_length=3)
    first_feedback_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class FeedbackRow(RoutingModel, table=True):
    """Feedback received from leads.feedback; ``assignment_id`` is empty while it waits for
    an assignment to apply to."""

    __tablename__ = "lead_feedback"
    __table_args__ = (Index("ix_lead_feedback_lead", "lead_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200, unique=True)
    lead_id: uuid.UUID
    status: str = Field(max_length=16)
    rejection_reason: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_type=Text)
    opportunity_id: str | None = Field(default=None, max_length=200)
    amount: Decimal | None = Field(default=None, sa_type=Numeric(20, 4))
    currency: str | None = Field(default=None, max_length=3)
    source: str = Field(max_length=64)
    rep_crm_user_id: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(sa_type=UtcDateTime)
    assignment_id: uuid.UUID | None = None
    applied_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


# A consumer batch adds a lead and an assignment for each record: one COPY per table at the
# flush instead of an INSERT a row (half the client's CPU of the ORM's flush).
copy_on_flush(RoutedLeadRow, AssignmentRow)

metadata = RoutingModel.metadata
TABLES = RuntimeTables.define(metadata)
ERASURES = ErasureLedger.define(metadata, TABLES)
