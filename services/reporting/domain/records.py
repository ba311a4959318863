"""The facts the read model holds, one record type per event type, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True, slots=True)
class TouchpointRecord:
    """A LeadIngestedV1: one touchpoint, with the lead's snapshot after it."""

    touchpoint_id: UUID
    lead_id: UUID
    created: bool  # change == "created": the submission that created the lead
    type: str
    source: str
    campaign: str | None
    occurred_at: datetime
    lead_created_at: datetime
    lead_source: str | None = None
    lead_campaign: str | None = None
    country: str | None = None
    region: str | None = None
    vertical: str | None = None


@dataclass(frozen=True, slots=True)
class GradeRecord:
    """A LeadScoredV1."""

    event_id: str
    lead_id: UUID
    grade: str
    scored_at: datetime
    touchpoint_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    """A LeadRoutedV1."""

    assignment_id: UUID
    lead_id: UUID
    outcome: str  # assigned | nurture | queued
    routed_at: datetime
    rep_id: str | None = None
    team_id: str | None = None
    reassignment_of: UUID | None = None
    sla_due_at: datetime | None = None
    rep_name: str | None = None


@dataclass(frozen=True, slots=True)
class SlaRecord:
    """A LeadSlaV1."""

    event_id: str
    lead_id: UUID
    assignment_id: UUID
    status: str  # warning | breached | reassigned | escalated | met
    due_at: datetime
    occurred_at: datetime
    rep_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A LeadFeedbackV1."""

    event_id: str
    lead_id: UUID
    status: str  # contacted | accepted | rejected | converted | won | lost
    occurred_at: datetime
    rejection_reason: str | None = None
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the topics told the read model."""

    touchpoints: tuple[TouchpointRecord, ...] = ()
    grades: tuple[GradeRecord, ...] = ()
    assignments: tuple[AssignmentRecord, ...] = ()
    sla: tuple[SlaRecord, ...] = ()
    feedback: tuple[FeedbackRecord, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class CostRecord:
    """What a campaign cost in one quarter (entered through the API)."""

    campaign: str
    quarter: str  # 2026-Q1
    amount: Decimal


@dataclass(frozen=True, slots=True)
class TargetRecord:
    """A quarterly target of a campaign or a team (entered through the API)."""

    quarter: str
    scope: str  # campaign | team
    scope_id: str
    leads: int | None = None
    mqls: int | None = None
    conversion: float | None = None  # lead to opportunity, 0..1
