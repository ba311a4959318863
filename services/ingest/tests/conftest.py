"""Fixtures of the ingest suite: the service behind real HTTP on both databases.

Most tests need no broker: what a request commits is in the database (its events in the
outbox), and the answer comes after the commit. The Kafka tests start the whole runtime.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import func, select

from services.ingest.auth import create_key
from services.ingest.models import TABLES
from services.ingest.service import DEFINITION
from shared import schema_files
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing.pytest_plugin import serve_app, service_settings


@pytest.fixture
def service_definition() -> ServiceDefinition:
    return DEFINITION


def outbox_events(database: Database, topic: str = "leads.ingested") -> list[dict[str, Any]]:
    """The payloads waiting in (or sent from) the outbox, oldest first, each checked
    against its published JSON Schema."""
    outbox = TABLES.outbox
    with database.read() as session:
        rows = session.execute(
            select(outbox.c.payload, outbox.c.headers)
            .where(outbox.c.topic == topic)
            .order_by(outbox.c.id)
        ).all()
    payloads = []
    for payload, headers in rows:
        ce_type = dict(json.loads(headers))["ce_type"]
        data = json.loads(payload)
        _validator(ce_type).validate(data)
        payloads.append(data)
    return payloads


@functools.cache
def _validator(ce_type: str) -> Any:
    """What ``jsonschema.validate`` does, the schema checked once, not for each event (which
    took seconds for a few hundred)."""
    schema = schema_files.load(ce_type)
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def count(database: Database, model: Any) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


class Ingest:
    """The service on 127.0.0.1: an HTTP client with an API key, and its database."""

    def __init__(self, client: httpx.AsyncClient, database: Database, runtime: ServiceRuntime):
        self.client = client
        self.database = database
        self.runtime = runtime


@pytest.fixture
def ingest_overrides() -> dict[str, Any]:
    """Settings a test module overrides (webhook secrets ...)."""
    return {}


@pytest.fixture
async def ingest(database: Database, ingest_overrides: dict[str, Any]) -> AsyncIterator[Ingest]:
    settings = service_settings(DEFINITION, database=database, **ingest_overrides)
    runtime = ServiceRuntime(DEFINITION, settings)
    with database.transaction() as session:
        key = create_key(session, name="tests")
    app = create_app(runtime, manage_runtime=False)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60) as client,
    ):
        yield Ingest(client, database, runtime)
