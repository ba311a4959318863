"""The delivery service as the runtime runs it."""

from __future__ import annotations

from pathlib import Path

from services.delivery.api import router
from services.delivery.dispatcher import dispatch_webhooks, write_back_assignments
from services.delivery.handlers import handlers
from services.delivery.models import TABLES, metadata
from services.delivery.settings import DeliverySettings
from shared.service import ConsumerSpec, ServiceDefinition

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
    routers=(router,),
    consumers=(ConsumerSpec(handlers=handlers),),
    workers=(dispatch_webhooks, write_back_assignments),
)
