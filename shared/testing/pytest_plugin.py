"""Fixtures for every Leadflow test suite: real Kafka, real databases, real HTTP.

* ``kafka`` (session): a reachable broker, from :func:`shared.kafka.provision.kafka_bootstrap`.
* ``topic_names``: a fresh namespace per test with the catalog's topics created in it, so tests
  never see each other's records.
* ``db_backend``: ``sqlite`` and ``postgresql``; every database test runs on both.
* ``database``: a database migrated by the real Alembic migrations of the test's
  ``service_definition`` (a fixture each suite's conftest provides), fresh for each test:
  cloned from a template migrated once per session.
* :func:`serve_app`: a real uvicorn server on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from psycopg import sql
from sqlalchemy.engine import make_url

from shared.db import Database
from shared.db.migrate import upgrade
from shared.kafka.admin import ensure_topics
from shared.kafka.provision import ProvisionedKafka, kafka_bootstrap
from shared.ports import free_port
from shared.service import ServiceDefinition, ServiceRuntime
from shared.settings import KEEP_ALIVE_SECONDS, PlatformSettings, ServiceSettings
from shared.testing.postgres import LocalPostgres
from shared.topics import CATALOG, TopicNames

TEST_PARTITIONS = 3
# The local test broker also listens with SASL/PLAIN for this user, to test authentication.
SASL_USER = ("leadflow-test", uuid.uuid4().hex)


class _Session:
    """What this test session started, for failure reports and fault tests."""

    kafka: ProvisionedKafka | None = None
    postgres: LocalPostgres | None = None


# ---------------------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka() -> Iterator[ProvisionedKafka]:
    settings = PlatformSettings(topic_partitions=TEST_PARTITIONS)
    with kafka_bootstrap(settings, local_sasl_users=dict([SASL_USER])) as provisioned:
        _Session.kafka = provisioned
        try:
            yield provisioned
        finally:
            _Session.kafka = None


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(kafka: ProvisionedKafka) -> str:
    return kafka.bootstrap_servers


@pytest.fixture
async def topic_names(kafka_bootstrap_servers: str) -> TopicNames:
    names = TopicNames(namespace=f"t{uuid.uuid4().hex[:10]}")
    await ensure_topics(kafka_bootstrap_servers, names, CATALOG, partitions=TEST_PARTITIONS)
    return names


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    broker = _Session.kafka.local if _Session.kafka else None
    uses_kafka = {"kafka", "kafka_bootstrap_servers", "topic_names"} & set(
        getattr(item, "fixturenames", ())
    )
    if report.failed and broker is not None and uses_kafka:
        report.sections.append(("Kafka broker log (tail)", broker.log_tail(40)))
    return report


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    explicit = os.environ.get("LEADFLOW_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    with LocalPostgres() as server:
        _Session.postgres = server
        try:
            yield server.url
        finally:
            _Session.postgres = None


def local_postgres() -> LocalPostgres | None:
    """The cluster this test session started, if it started one (fault tests restart it)."""
    return _Session.postgres


class DatabaseFactory:
    """Fresh, migrated databases: each a copy of a template migrated once per session."""

    def __init__(self, root: Path, request: pytest.FixtureRequest) -> None:
        self.root = root
        self.request = request
        self._sqlite_templates: dict[str, Path] = {}
        self._pg_templates: dict[str, str] = {}
        self._created: list[tuple[str, str]] = []

    def _pg_admin(self) -> str:
        url: str = self.request.getfixturevalue("postgres_url")
        return url

    def _pg_url(self, database: str) -> str:
        return (
            make_url(self._pg_admin()).set(database=database).render_as_string(hide_password=False)
        )

    def _pg_execute(self, statement: sql.Composed) -> None:
        admin = make_url(self._pg_admin()).set(drivername="postgresql")
        dsn = admin.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(statement)

    def create(self, backend: str, definition: ServiceDefinition) -> Database:
        key = definition.name
        name = f"{key}_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            template = self._sqlite_templates.get(key)
            if template is None:
                template = self.root / f"template_{key}.db"
                database = Database(f"sqlite:///{template}")
                upgrade(definition.migrations_dir, database)
                database.dispose()
                self._sqlite_templates[key] = template
            path = self.root / f"{name}.db"
            shutil.copyfile(template, path)
            return Database(f"sqlite:///{path}")
        if backend == "postgresql":
            template_name = self._pg_templates.get(key)
            if template_name is None:
                template_name = f"template_{key}_{uuid.uuid4().hex[:6]}"
                self._pg_execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template_name))
                )
                database = Database(self._pg_url(template_name))
                upgrade(definition.migrations_dir, database)
                database.dispose()
                self._pg_templates[key] = template_name
            self._pg_execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template_name)
                )
            )
            self._created.append(("postgresql", name))
            return Database(self._pg_url(name))
        raise ValueError(f"unknown backend {backend!r}")

    def drop(self, database: Database) -> None:
        database.dispose()
        if database.is_postgresql and database.url.database:
            self._pg_execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database.url.database)
                )
            )


@pytest.fixture(scope="session")
def database_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> DatabaseFactory:
    return DatabaseFactory(tmp_path_factory.mktemp("databases"), request)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def database(
    db_backend: str, database_factory: DatabaseFactory, service_definition: ServiceDefinition
) -> Iterator[Database]:
    database = database_factory.create(db_backend, service_definition)
    try:
        yield database
    finally:
        database_factory.drop(database)


# ---------------------------------------------------------------------------- services


def service_settings(
    definition: ServiceDefinition,
    *,
    database: Database,
    topic_names: TopicNames | None = None,
    bootstrap_servers: str | None = None,
    **overrides: Any,
) -> ServiceSettings:
    """The service's settings pointed at the test's database, broker and namespace."""
    base = definition.settings()
    platform = base.platform.model_copy(
        update={
            "topic_namespace": topic_names.namespace if topic_names else "",
            "kafka_bootstrap_servers": bootstrap_servers,
        }
    )
    update = {
        "database_url": database.url.render_as_string(hide_password=False),
        "platform": platform,
        "handler_backoff_initial_ms": 20,
        "handler_backoff_max_ms": 200,
        "outbox_poll_interval_ms": 200,
        **overrides,
    }
    return base.model_copy(update=update)


@asynccontextmanager
async def running_runtime(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    """Start a service runtime (producer, relay, consumers, workers), stop it afterwards."""
    await runtime.start()
    try:
        for consumer in runtime.consumers:
            await asyncio.wait_for(consumer.started.wait(), 60)
        yield runtime
    finally:
        await runtime.stop()


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 and a free port, idle connections kept
    as ``leadflow serve`` keeps them; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    # The test process owns its signals, not the server it hosts.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


@contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Set (or with None, unset) environment variables for the block."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
