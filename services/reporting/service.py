"""The reporting service as the runtime runs it."""

from __future__ import annotations

from pathlib import Path

from services.reporting.api import router
from services.reporting.cli import cli
from services.reporting.dashboard import router as dashboard
from services.reporting.handlers import handlers
from services.reporting.models import TABLES, metadata
from services.reporting.settings import ReportingSettings
from shared.service import ConsumerSpec, ServiceDefinition

DEFINITION = ServiceDefinition(
    name="reporting",
    description=(
        "Builds the shared metrics from every topic and serves the dashboard, JSON and CSV."
    ),
    settings=ReportingSettings,
    metadata=metadata,
    tables=TABLES,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(router, dashboard),
    consumers=(ConsumerSpec(handlers=handlers),),
    cli=cli,
)
