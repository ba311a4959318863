"""The delivery service's tables. Its metadata is its own: no other service reads these.

* ``subscriptions``: webhook receivers, their filters, secret and circuit-breaker state;
* ``deliveries``: one message per (subscription, event), with its retry state; its id is the
  order in which a lead's messages go out;
* ``delivery_attempts``: the delivery log, one row per HTTP attempt;
* ``lead_views``: the small projection of each lead that filters and CRM write-backs need;
* ``crm_writebacks`` and ``crm_writeback_attempts``: assignments written back to CRMs;
* ``erased_leads``: leads erased on request, never delivered or written back again.

A ``next_attempt_at`` of NULL means "as soon as possible": what a consumer queues is due at
once, whatever clock the dispatcher runs on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import RuntimeTables
from shared.db.types import UtcDateTime
from shared.erasure import ErasureLedger

BigId = BigInteger().with_variant(Integer, "sqlite")


class DeliveryModel(SQLModel, registry=registry()):
    """Base of every delivery table; a registry of its own keeps its metadata apart."""


class Subscription(DeliveryModel, table=True):
    __tablename__ = "subscriptions"

    id: uuid.UUID = Field(primary_key=True)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(sa_type=JSON)
    grades: list[str] = Field(default_factory=list, sa_type=JSON)
    campaigns: list[str] = Field(default_factory=list, sa_type=JSON)
    # whsec_...: HMAC keys must be readable to sign with, so it is stored as given out.
    secret: str = Field(max_length=200)
    # active | paused (by hand or by the circuit breaker) | disabled (the receiver said 410)
    status: str = Field(default="active", max_length=20)
    paused_reason: str | None = Field(default=None, max_length=200)
    paused_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    consecutive_failures: int = 0
    client_errors: int = 0
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Delivery(DeliveryModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_deliveries_subscription_event"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_stream", "subscription_id", "lead_id", "id"),
        Index("ix_deliveries_subscription_created", "subscription_id", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    message_id: str = Field(max_length=64, unique=True)
    subscription_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False)
    )
    lead_id: uuid.UUID
    event_id: str = Field(max_length=200)
    event_type: str = Field(max_length=100)
    body: str = Field(sa_type=Text)
    # pending | delivered | failed (given up after the retry window) | cancelled (lead erased)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    # Failed attempts since the retry window started (resuming or replaying restarts it).
    failures: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    window_started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    leased_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    lease_token: str | None = Field(default=None, max_length=64)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class DeliveryAttempt(DeliveryModel, table=True):
    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    delivery_id: int = Field(
        sa_column=Column(
            BigId, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    attempt: int
    started_at: datetime = Field(sa_type=UtcDateTime)
    duration_ms: int
    status_code: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    response_excerpt: str | None = Field(default=None, sa_type=Text)
    # delivered | retry | gone | given_up
    outcome: str = Field(max_length=20)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LeadView(DeliveryModel, table=True):
    __tablename__ = "lead_views"

    lead_id: uuid.UUID = Field(primary_key=True)
    campaign: str | None = Field(default=None, max_length=200)
    grade: str | None = Field(default=None, max_length=1)
    crm_ids: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class CrmWriteback(DeliveryModel, table=True):
    __tablename__ = "crm_writebacks"
    __table_args__ = (
        UniqueConstraint("assignment_id", "provider", name="uq_crm_writebacks_assignment"),
        Index("ix_crm_writebacks_due", "status", "next_attempt_at"),
        Index("ix_crm_writebacks_stream", "provider", "lead_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    lead_id: uuid.UUID
    assignment_id: uuid.UUID
    event_id: str = Field(max_length=200)
    provider: str = Field(max_length=20)
    record_id: str = Field(max_length=100)
    owner_id: str = Field(max_length=100)
    # pending | done | failed (given up after the retry window) | cancelled (lead erased)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    failures: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    window_started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    leased_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    lease_token: str | None = Field(default=None, max_length=64)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class CrmWritebackAttempt(DeliveryModel, table=True):
    __tablename__ = "crm_writeback_attempts"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    writeback_id: int = Field(
        sa_column=Column(
            BigId, ForeignKey("crm_writebacks.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    attempt: int
    started_at: datetime = Field(sa_type=UtcDateTime)
    duration_ms: int
    status_code: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    response_excerpt: str | None = Field(default=None, sa_type=Text)
    # done | retry | given_up
    outcome: str = Field(max_length=20)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


metadata = DeliveryModel.metadata
TABLES = RuntimeTables.define(metadata)
ERASURES = ErasureLedger.define(metadata, TABLES)
