"""Every service stands on the platform: real migrations on both databases, probes over HTTP."""

from __future__ import annotations

import httpx
import pytest

from shared.db import Database
from shared.db.migrate import drift
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.system import SERVICES, load
from shared.testing.kafka_tools import eventually
from shared.testing.pytest_plugin import serve_app, service_settings
from shared.topics import TopicNames


@pytest.fixture(params=list(SERVICES))
def service_definition(request: pytest.FixtureRequest) -> ServiceDefinition:
    return load(request.param)


def test_migrations_build_exactly_the_models(
    service_definition: ServiceDefinition, database: Database
) -> None:
    assert drift(database, service_definition.metadata) == []


def test_services_have_distinct_ports_and_their_own_metadata() -> None:
    definitions = [load(name) for name in SERVICES]
    assert sorted(d.settings().port for d in definitions) == [8081, 8082, 8083, 8084, 8085]
    assert len({id(d.metadata) for d in definitions}) == 5


@pytest.mark.kafka
async def test_each_service_starts_and_reports_ready(
    service_definition: ServiceDefinition,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> None:
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
    )
    runtime = ServiceRuntime(service_definition, settings)
    async with serve_app(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as client:
        health = await client.get("/healthz")
        assert health.json() == {"status": "ok", "service": service_definition.name}

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=30)
        assert (await client.get("/openapi.json")).json()["info"]["title"] == (
            f"Leadflow {service_definition.name}"
        )
