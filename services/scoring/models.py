"""The scoring service's tables. Its metadata is its own: no other service reads these."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from shared.db import RuntimeTables


class ScoringModel(SQLModel, registry=registry()):
    """Base of every scoring table; a registry of its own keeps its metadata apart."""


metadata = ScoringModel.metadata
TABLES = RuntimeTables.define(metadata)
