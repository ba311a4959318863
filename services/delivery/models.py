"""The delivery service's tables. Its metadata is its own: no other service reads these."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from shared.db import RuntimeTables


class DeliveryModel(SQLModel, registry=registry()):
    """Base of every delivery table; a registry of its own keeps its metadata apart."""


metadata = DeliveryModel.metadata
TABLES = RuntimeTables.define(metadata)
