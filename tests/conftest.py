"""Fixtures of the whole-system suites (end-to-end, faults, benchmarks): see docs/testing.md.

* ``system_factory``: starts :class:`tests.system.System` instances for one test and stops
  them (by PID) when it ends: ``system_factory(replicas={"routing": 2}, backend="sqlite")``.
* ``system``: every service, on PostgreSQL, shared by the tests of a module (each test works
  on leads of its own). A module changes its settings with a ``system_options`` fixture.

A failing test's report gets the tail of every process's log of every system still running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.flow import Receiver, webhook_receiver
from tests.system import System

_LIVE: list[System] = []

# What e2e tests sign HubSpot webhooks with: ingest's HubSpot door is configured with it.
HUBSPOT_CLIENT_SECRET = "e2e-hubspot-client-secret"

SystemFactory = Callable[..., System]


class _Factory:
    def __init__(self, *, bootstrap_servers: str, postgres_url: str, workdir: Path) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.postgres_url = postgres_url
        self.workdir = workdir
        self.systems: list[System] = []

    def __call__(self, **options: Any) -> System:
        workdir = self.workdir / f"system{len(self.systems)}"
        options.setdefault("postgres_url", self.postgres_url)
        system = System(bootstrap_servers=self.bootstrap_servers, workdir=workdir, **options)
        self.systems.append(system)
        _LIVE.append(system)
        system.start()
        return system

    def stop_all(self) -> None:
        for system in reversed(self.systems):
            try:
                system.stop()
            finally:
                if system in _LIVE:
                    _LIVE.remove(system)


def default_service_env() -> dict[str, dict[str, str]]:
    return {"ingest": {"LEADFLOW_INGEST_HUBSPOT_CLIENT_SECRET": HUBSPOT_CLIENT_SECRET}}


@pytest.fixture
def system_factory(
    kafka_bootstrap_servers: str, postgres_url: str, tmp_path: Path
) -> Iterator[SystemFactory]:
    factory = _Factory(
        bootstrap_servers=kafka_bootstrap_servers, postgres_url=postgres_url, workdir=tmp_path
    )
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A webhook subscriber on 127.0.0.1 for one test, and the URL to subscribe."""
    async with webhook_receiver() as served:
        yield served


@pytest.fixture(scope="module")
def system_options() -> dict[str, Any]:
    """Keyword arguments of the module's :class:`System` (override in a module)."""
    return {"service_env": default_service_env()}


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap_servers: str,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    system_options: dict[str, Any],
) -> Iterator[System]:
    factory = _Factory(
        bootstrap_servers=kafka_bootstrap_servers,
        postgres_url=postgres_url,
        workdir=tmp_path_factory.mktemp("system"),
    )
    try:
        yield factory(**system_options)
    finally:
        factory.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for system in _LIVE:
            report.sections.append(("system", system.describe()))
            for name, tail in system.log_tails(30).items():
                report.sections.append((f"log of {name} (tail)", tail))
    return report
