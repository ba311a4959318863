"""The ingest service's tables. Its metadata is its own: no other service reads these.

A person's identifying data lives in ``leads`` (named columns, ``attributes``, ``consent``,
``crm_ids``), and also where a submission is kept as it came: the rows of an import's file
still to be processed, the answers stored for idempotent retries, a touchpoint's free-text
UTM term and content, the CRM record ids of ``crm_links`` and ``feedback``. Erasure
(:mod:`services.ingest.erasure`) clears all of it and keeps ``suppressions``: keyed hashes of
the person's email and phone, never the clear values.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, Numeric, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import RuntimeTables
from shared.db.types import UtcDateTime
from shared.erasure import ErasureLedger


class IngestModel(SQLModel, registry=registry()):
    """Base of every ingest table; a registry of its own keeps its metadata apart."""


class Account(IngestModel, table=True):
    """A company leads are linked to: by registrable domain, or by name where there is none."""

    __tablename__ = "accounts"

    id: uuid.UUID = Field(primary_key=True)
    domain: str | None = Field(default=None, max_length=255, unique=True)
    name: str | None = Field(default=None, max_length=300)
    name_key: str | None = Field(default=None, max_length=300, index=True)
    created_at: datetime = Field(sa_type=UtcDateTime)


class Lead(IngestModel, table=True):
    """One person: deduplicated on normalized email, then phone."""

    __tablename__ = "leads"

    id: uuid.UUID = Field(primary_key=True)
    # Personal data: cleared on erasure.
    email: str | None = Field(default=None, max_length=320, unique=True)
    phone: str | None = Field(default=None, max_length=20, index=True)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Not personal on their own.
    free_mail: bool = False
    seniority: str | None = Field(default=None, max_length=20)
    department: str | None = Field(default=None, max_length=64)
    account_id: uuid.UUID | None = Field(default=None, foreign_key="accounts.id", index=True)
    company_name: str | None = Field(default=None, max_length=300)
    company_domain: str | None = Field(default=None, max_length=255)
    website: str | None = Field(default=None, max_length=500)
    industry: str | None = Field(default=None, max_length=300)
    vertical: str | None = Field(default=None, max_length=64)
    sic_code: str | None = Field(default=None, max_length=8)
    naics_code: str | None = Field(default=None, max_length=8)
    employees: int | None = None
    annual_revenue: Decimal | None = Field(default=None, sa_column=Column(Numeric(20, 2)))
    country: str | None = Field(default=None, max_length=2)
    region: str | None = Field(default=None, max_length=10)
    consent: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    crm_ids: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str | None = Field(default=None, max_length=200)
    campaign: str | None = Field(default=None, max_length=200)
    touchpoint_count: int = 0
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    erased_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Touchpoint(IngestModel, table=True):
    """One submission of one person: what scoring counts."""

    __tablename__ = "touchpoints"
    __table_args__ = (Index("ix_touchpoints_lead_occurred", "lead_id", "occurred_at"),)

    id: uuid.UUID = Field(primary_key=True)
    lead_id: uuid.UUID = Field(foreign_key="leads.id")
    type: str = Field(max_length=64)
    door: str = Field(max_length=16)
    source: str = Field(max_length=200)
    campaign: str | None = Field(default=None, max_length=200)
    utm: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    reference: str | None = Field(default=None, max_length=300)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(sa_type=UtcDateTime)


class CrmLink(IngestModel, table=True):
    """A CRM's record id for a lead: how feedback from the CRM finds its lead."""

    __tablename__ = "crm_links"

    provider: str = Field(primary_key=True, max_length=32)
    record_id: str = Field(primary_key=True, max_length=200)
    lead_id: uuid.UUID = Field(foreign_key="leads.id", index=True)
    # The CRM's own last-modified time of the newest version applied: CRMs redeliver and
    # reorder notifications, and an older version must not overwrite a newer one.
    modified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ApiKey(IngestModel, table=True):
    """A key for the JSON and import doors. Only a hash of the secret is stored."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=200)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class IdempotentRequest(IngestModel, table=True):
    """The first answer to a request with an idempotency key or a provider's event id."""

    __tablename__ = "idempotent_requests"

    scope: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=300)
    fingerprint: str = Field(max_length=64)
    status_code: int
    body: str = Field(sa_type=Text)
    media_type: str = Field(default="application/json", max_length=100)
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)


class Form(IngestModel, table=True):
    """A web form: which of its fields is the email, the campaign, the source ..."""

    __tablename__ = "forms"

    id: str = Field(primary_key=True, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    field_map: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    defaults: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Import(IngestModel, table=True):
    """A CSV file accepted for import: stored whole, processed in chunks, resumable."""

    __tablename__ = "imports"

    id: uuid.UUID = Field(primary_key=True)
    filename: str | None = Field(default=None, max_length=300)
    source: str = Field(max_length=200)
    campaign: str | None = Field(default=None, max_length=200)
    touchpoint_type: str = Field(max_length=64)
    # The file as accepted; emptied once it is processed (only the report stays).
    content: str = Field(sa_type=Text)
    # One more each time rows of the stored file are blanked (erasure, suppression): the
    # import worker keeps the file parsed between chunks only while this has not changed.
    content_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    encoding: str | None = Field(default=None, max_length=20)
    delimiter: str | None = Field(default=None, max_length=4)
    status: str = Field(default="pending", max_length=16, index=True)
    total_rows: int | None = None
    processed_rows: int = 0
    created: int = 0
    merged: int = 0
    rejected: int = 0
    # Values kept raw (warning issues), counted as chunks write them: a progress report
    # reads it instead of counting the issues of the import again on every poll.
    warnings: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ImportIssue(IngestModel, table=True):
    """A row of an import that was refused (error) or kept with a value left raw (warning)."""

    __tablename__ = "import_issues"
    __table_args__ = (UniqueConstraint("import_id", "row", "field", name="uq_import_issue"),)

    id: int | None = Field(default=None, primary_key=True)
    # Looked up through uq_import_issue, which begins with it (no index of its own).
    import_id: uuid.UUID = Field(foreign_key="imports.id")
    row: int
    field: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    severity: str = Field(max_length=8)


class Feedback(IngestModel, table=True):
    """A status change from a CRM or a rep, as it was published on leads.feedback."""

    __tablename__ = "feedback"

    id: uuid.UUID = Field(primary_key=True)
    lead_id: uuid.UUID = Field(foreign_key="leads.id", index=True)
    status: str = Field(max_length=16)
    rejection_reason: str | None = Field(default=None, max_length=32)
    source: str = Field(max_length=32)
    crm_record_id: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(sa_type=UtcDateTime)


class Suppression(IngestModel, table=True):
    """A person erased on request, as keyed hashes (HMAC-SHA256) of their normalized email and
    phone: a later submission of that email (or, with no email, that phone) is refused until
    it carries the person's consent again, which removes the entries of that erasure."""

    __tablename__ = "suppressions"

    digest: str = Field(primary_key=True, max_length=64)
    erasure_id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(max_length=8)  # email | phone
    lead_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    regulation: str = Field(max_length=8)
    erased_at: datetime = Field(sa_type=UtcDateTime)


metadata = IngestModel.metadata
TABLES = RuntimeTables.define(metadata)
ERASURES = ErasureLedger.define(metadata, TABLES)
