"""The scoring service's tables. Its metadata is its own: no other service reads these.

* ``rulebooks``: every version as it was posted, one of them active;
* ``leads`` and ``touchpoints``: the service's own projection of ``leads.ingested``;
* ``scores``: each lead's current score with its reasons, and when decay may next change it;
* ``score_history``: every published score;
* ``feedback``: what sales reported (``leads.feedback``), for back-tests and closing leads;
* ``rescore_jobs``: re-scoring every open lead after an activation, resumable by its cursor;
* ``erased_leads``: leads erased on request (``leads.erased``), never projected again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, Text, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import RuntimeTables
from shared.db.types import UtcDateTime
from shared.erasure import ErasureLedger

BigId = BigInteger().with_variant(Integer, "sqlite")


class ScoringModel(SQLModel, registry=registry()):
    """Base of every scoring table; a registry of its own keeps its metadata apart."""


class RulebookRecord(ScoringModel, table=True):
    __tablename__ = "rulebooks"
    __table_args__ = (
        # At most one active version.
        Index(
            "ux_rulebooks_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=Text)
    source: str = Field(sa_type=Text)  # the document exactly as posted
    media_type: str = Field(max_length=10)  # yaml | json
    checksum: str = Field(max_length=64)  # sha256 of the source
    created_at: datetime = Field(sa_type=UtcDateTime)
    active: bool = Field(default=False)
    activated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LeadRecord(ScoringModel, table=True):
    __tablename__ = "leads"

    lead_id: uuid.UUID = Field(primary_key=True)
    snapshot: dict[str, Any] = Field(sa_type=JSON)  # LeadSnapshot as JSON
    # ingest's touchpoint count of the snapshot: an older snapshot never overwrites a newer.
    touchpoint_count: int
    company_domain: str | None = Field(default=None, max_length=255, index=True)
    account_id: uuid.UUID | None = Field(default=None, index=True)
    # Converted, won or lost: no longer re-scored by decay or activation.
    closed: bool = Field(default=False)
    status: str | None = Field(default=None, max_length=20)  # latest feedback status
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class TouchpointRecord(ScoringModel, table=True):
    __tablename__ = "touchpoints"

    touchpoint_id: uuid.UUID = Field(primary_key=True)
    lead_id: uuid.UUID = Field(index=True)
    type: str = Field(max_length=64)
    door: str = Field(max_length=20)
    source: str = Field(max_length=200)
    campaign: str | None = Field(default=None, max_length=200)
    reference: str | None = Field(default=None, max_length=200)
    utm_source: str | None = Field(default=None, max_length=200)
    utm_medium: str | None = Field(default=None, max_length=200)
    utm_campaign: str | None = Field(default=None, max_length=200)
    utm_term: str | None = Field(default=None, max_length=200)
    utm_content: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = Field(sa_type=UtcDateTime)


class ScoreRecord(ScoringModel, table=True):
    __tablename__ = "scores"

    lead_id: uuid.UUID = Field(primary_key=True)
    rulebook_version: int
    grade: str = Field(max_length=1)
    category: str = Field(max_length=64)  # the category that gave the grade
    fit_score: float
    engagement_score: float
    categories: list[dict[str, Any]] = Field(sa_type=JSON)
    reasons: list[dict[str, Any]] = Field(sa_type=JSON)
    trigger: str = Field(max_length=30)
    touchpoint_id: uuid.UUID | None = None
    scored_at: datetime = Field(sa_type=UtcDateTime)
    # When decay may next move the grade: the scheduler re-scores the lead then.
    next_check_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)


class ScoreHistory(ScoringModel, table=True):
    __tablename__ = "score_history"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    lead_id: uuid.UUID = Field(index=True)
    rulebook_version: int
    grade: str = Field(max_length=1)
    previous_grade: str | None = Field(default=None, max_length=1)
    fit_score: float
    engagement_score: float
    categories: list[dict[str, Any]] = Field(sa_type=JSON)
    trigger: str = Field(max_length=30)
    touchpoint_id: uuid.UUID | None = None
    scored_at: datetime = Field(sa_type=UtcDateTime)


class FeedbackRecord(ScoringModel, table=True):
    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    lead_id: uuid.UUID = Field(index=True)
    status: str = Field(max_length=20)
    rejection_reason: str | None = Field(default=None, max_length=30)
    occurred_at: datetime = Field(sa_type=UtcDateTime)


class RescoreJob(ScoringModel, table=True):
    __tablename__ = "rescore_jobs"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    rulebook_version: int = Field(index=True)
    status: str = Field(max_length=20)  # pending | running | done | superseded
    cursor: uuid.UUID | None = None  # the last lead re-scored, in lead id order
    leads_rescored: int = 0
    grades_changed: int = 0
    created_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


metadata = ScoringModel.metadata
TABLES = RuntimeTables.define(metadata)
ERASURES = ErasureLedger.define(metadata, TABLES)
