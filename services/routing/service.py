"""The routing service as the runtime runs it."""

from __future__ import annotations

from pathlib import Path

from services.routing.models import TABLES, metadata
from services.routing.settings import RoutingSettings
from shared.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="routing",
    description=(
        "Assigns graded leads to reps or nurture under a follow-up SLA, and publishes "
        "leads.routed and leads.sla."
    ),
    settings=RoutingSettings,
    metadata=metadata,
    tables=TABLES,
    migrations_dir=Path(__file__).parent / "migrations",
)
