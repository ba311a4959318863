"""Every service stands on the platform: real migrations on both databases, probes over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

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


async def test_an_idle_connection_is_kept_longer_than_clients_keep_theirs(
    tmp_path: Path,
) -> None:
    """A client (httpx, a load balancer) reuses an idle connection for a few seconds; a
    server that closed it first would race the next request on it, which then fails with
    no answer at all. uvicorn's default closes after 5 s."""
    definition = load("ingest")
    settings = definition.settings().model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'ingest.db'}"}
    )
    assert settings.http_keep_alive_seconds > 60
    runtime = ServiceRuntime(definition, settings)
    async with serve_app(create_app(runtime, manage_runtime=False)) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        try:
            for idle in (6.5, 0.0):  # beyond uvicorn's 5 s and httpx's 5 s: still open
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                length = re.search(rb"content-length: (\d+)", head.lower())
                assert length is not None
                await reader.readexactly(int(length[1]))
                if idle:
                    with contextlib.suppress(TimeoutError):
                        closed = await asyncio.wait_for(reader.read(1), timeout=idle)
                        raise AssertionError(f"the server closed the idle connection: {closed!r}")
        finally:
            writer.close()


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
