"""The ingest service as the runtime runs it."""

from __future__ import annotations

from pathlib import Path

from services.ingest.api import router
from services.ingest.cli import cli
from services.ingest.erasure import router as erasure_router
from services.ingest.feedback import router as feedback_router
from services.ingest.forms import admin as forms_admin
from services.ingest.forms import public as forms_public
from services.ingest.idempotency import purge_expired
from services.ingest.imports import process_imports
from services.ingest.imports import router as imports_router
from services.ingest.models import ERASURES, TABLES, metadata
from services.ingest.settings import IngestSettings
from services.ingest.webhooks import router as webhooks_router
from shared.erasure import outbox_purger
from shared.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="ingest",
    description=(
        "Captures leads from every door (API, forms, CSV, CRM webhooks), normalizes and "
        "deduplicates them, and publishes leads.ingested, leads.feedback and leads.erased."
    ),
    settings=IngestSettings,
    metadata=metadata,
    tables=TABLES,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(
        router,
        forms_admin,
        forms_public,
        imports_router,
        feedback_router,
        webhooks_router,
        erasure_router,
    ),
    workers=(process_imports, purge_expired, outbox_purger(ERASURES)),
    cli=cli,
)
