"""The probe's tables: the runtime tables and one table of effects its handler leaves."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import RuntimeTables
from shared.db.types import UtcDateTime


class ProbeModel(SQLModel, registry=registry()):
    pass


class Effect(ProbeModel, table=True):
    """One row per handler run: a second row for one event id means a double effect."""

    __tablename__ = "effects"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200, index=True)
    lead_id: uuid.UUID
    note: str | None = Field(default=None, max_length=200)
    unique_key: str | None = Field(default=None, max_length=64, unique=True)
    handled_at: datetime = Field(sa_type=UtcDateTime)


metadata = ProbeModel.metadata
TABLES = RuntimeTables.define(metadata)
