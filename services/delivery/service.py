"""The delivery service as the runtime runs it."""

from __future__ import annotations

from pathlib import Path

from services.delivery.models import TABLES, metadata
from services.delivery.settings import DeliverySettings
from shared.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="delivery",
    description=(
        "Events out: signed webhook subscriptions for marketing automation, delivered in "
        "order per lead with retries, and assignments written back to the CRM."
    ),
    settings=DeliverySettings,
    metadata=metadata,
    tables=TABLES,
    migrations_dir=Path(__file__).parent / "migrations",
)
