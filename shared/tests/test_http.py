"""Every service's HTTP side, over real HTTP: probes, metrics, unit of work, size cap."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from shared.db import Database
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime, run_checks
from shared.testing.kafka_tools import eventually, read_topic
from shared.testing.probe.models import TABLES, Effect
from shared.testing.pytest_plugin import serve_app, service_settings
from shared.topics import TopicNames

MAX_BYTES = 4096


def count(database: Database, table: object) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@pytest.fixture
async def client(
    service_definition: ServiceDefinition,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
        max_request_bytes=MAX_BYTES,
    )
    runtime = ServiceRuntime(service_definition, settings)
    async with serve_app(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as client:
        await eventually(lambda: runtime.producer is not None)
        client.runtime = runtime  # type: ignore[attr-defined]
        yield client


@pytest.mark.kafka
async def test_probes_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": "probe"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}


async def test_not_ready_while_the_broker_is_not_connected(
    service_definition: ServiceDefinition, database: Database
) -> None:
    settings = service_settings(service_definition, database=database)
    runtime = ServiceRuntime(service_definition, settings)
    app = create_app(runtime, manage_runtime=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "kafka": "not connected"}


async def test_a_database_that_takes_the_connection_and_never_answers_is_named_not_waited_for(
    service_definition: ServiceDefinition, database: Database
) -> None:
    # A server that accepts the connection and never speaks: a hung database, not a refused one.
    with socket.create_server(("127.0.0.1", 0)) as hung:
        port = hung.getsockname()[1]
        settings = service_settings(
            service_definition,
            database=database,
            database_url=f"postgresql://leadflow@127.0.0.1:{port}/leadflow",
        )
        runtime = ServiceRuntime(service_definition, settings)
        app = create_app(runtime, manage_runtime=False)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "database": "unreachable: TimeoutError",
        "kafka": "not connected",
    }


def test_a_service_busy_with_its_own_database_work_still_answers_its_database_check(
    service_definition: ServiceDefinition, database: Database
) -> None:
    """Every thread of the event loop's default executor (where the service's handlers and
    workers run their transactions) is taken: the database check is answered all the same."""
    runtime = ServiceRuntime(
        service_definition, service_settings(service_definition, database=database)
    )
    release, occupied = threading.Event(), []

    async def readiness_while_busy() -> dict[str, str]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(2))
        all_busy = asyncio.Event()

        def occupy() -> None:
            occupied.append(threading.get_ident())
            if len(occupied) == 2:
                loop.call_soon_threadsafe(all_busy.set)
            release.wait()

        busy = [asyncio.ensure_future(asyncio.to_thread(occupy)) for _ in range(2)]
        try:
            await all_busy.wait()
            return await runtime.readiness()
        finally:
            release.set()
            await asyncio.gather(*busy)

    checks = asyncio.run(readiness_while_busy())
    assert checks == {"database": "ok", "kafka": "not connected"}


async def test_readiness_checks_run_side_by_side() -> None:
    # The database check waits for something only the broker check does: run one after the
    # other, it would run out of time before the broker check started.
    broker_checked = asyncio.Event()

    async def database() -> str:
        await broker_checked.wait()
        return "ok"

    async def kafka() -> str:
        broker_checked.set()
        return "ok"

    checks = await run_checks({"database": database, "kafka": kafka}, timeout=10)
    assert checks == {"database": "ok", "kafka": "ok"}


async def test_each_readiness_check_answers_for_itself_whether_it_hangs_fails_or_passes() -> None:
    async def hangs() -> str:
        await asyncio.Event().wait()
        return "ok"

    async def refused() -> str:
        raise ConnectionRefusedError

    async def fine() -> str:
        return "ok"

    checks = await run_checks({"hangs": hangs, "refused": refused, "fine": fine}, timeout=0.2)
    assert checks == {
        "hangs": "unreachable: TimeoutError",
        "refused": "unreachable: ConnectionRefusedError",
        "fine": "ok",
    }


@pytest.mark.kafka
async def test_a_request_commits_before_it_answers_and_publishes_after(
    client: httpx.AsyncClient,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> None:
    response = await client.post("/v1/probe", json={"note": "hello"})
    assert response.status_code == 202
    # Committed by the time the answer came: no waiting needed.
    assert count(database, Effect) == 1
    [record] = await read_topic(
        kafka_bootstrap_servers, topic_names.physical("leads.ingested"), count=1
    )
    assert dict(record.headers)["ce_id"].decode() == response.json()["event_id"]


@pytest.mark.kafka
async def test_a_request_that_fails_after_writing_leaves_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await client.post("/v1/probe", json={"note": "fail-after-write"})
    assert response.status_code == 500
    assert count(database, Effect) == 0
    assert count(database, TABLES.outbox) == 0


@pytest.mark.kafka
async def test_bad_input_names_the_field_and_the_reason(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/probe", json={"not_note": 1})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "note"]
    assert detail["msg"] == "Field required"


@pytest.mark.kafka
async def test_the_frameworks_own_errors_say_where_too(client: httpx.AsyncClient) -> None:
    # A body that is not UTF-8: FastAPI's own 400, in the shape of every other error.
    unreadable = await client.post(
        "/v1/probe", content=b'{"note": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert unreadable.status_code == 400
    [detail] = unreadable.json()["detail"]
    assert detail["loc"] == ["body"]
    assert detail["msg"] == "There was an error parsing the body"
    # No route for the path, or not for the method.
    unknown = await client.get("/v1/nowhere")
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["path"]
    wrong_method = await client.delete("/v1/probe")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["detail"][0]["loc"] == ["path"]
    assert wrong_method.headers["allow"] == "POST"


@pytest.mark.kafka
async def test_a_nul_character_in_the_query_or_path_is_a_422_naming_it(
    client: httpx.AsyncClient,
) -> None:
    # PostgreSQL holds no NUL in text: a lookup by one would fail in the database.
    response = await client.get("/v1/probe", params={"q": "fine", "entity": "a\x00b"})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["query", "entity"]
    assert "NUL" in detail["msg"]
    in_path = await client.get("/v1/probe/a%00b")
    assert in_path.status_code == 422
    assert in_path.json()["detail"][0]["loc"] == ["path"]
    # Percent signs and zeros that are not NUL pass.
    assert (await client.get("/healthz", params={"q": "%00 is 100% zero"})).status_code == 200


@pytest.mark.kafka
async def test_oversized_bodies_are_refused(client: httpx.AsyncClient, database: Database) -> None:
    big = {"note": "x" * (MAX_BYTES + 10)}
    response = await client.post("/v1/probe", json=big)
    assert response.status_code == 413
    assert "larger than 4096 bytes" in response.json()["detail"][0]["msg"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"note": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'"}'

    streamed = await client.post(
        "/v1/probe", content=chunked(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert count(database, Effect) == 0


@pytest.mark.kafka
async def test_metrics_are_exposed_for_prometheus(client: httpx.AsyncClient) -> None:
    await client.post("/v1/probe", json={"note": "metrics"})
    await eventually(lambda: client.runtime.relay.pending_count() == 0)  # type: ignore[attr-defined]
    text = (await client.get("/metrics")).text
    assert (
        'leadflow_http_requests_total{method="POST",route="/v1/probe",service="probe",status="202"}'
        in text
    )
    assert 'leadflow_events_published_total{service="probe",topic="leads.ingested"}' in text
    for name in (
        "leadflow_events_consumed_total",
        "leadflow_events_dead_lettered_total",
        "leadflow_handler_seconds_bucket",
        "leadflow_consumer_lag",
        "leadflow_outbox_pending",
    ):
        assert name in text
