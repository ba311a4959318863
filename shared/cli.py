"""The ``leadflow`` command line: run the system, a service, a broker; migrate; export schemas.

Services add their own commands (``leadflow import``, ``leadflow apikey`` ...) through the
``cli`` of their :class:`~shared.service.ServiceDefinition`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from shared import asyncapi, heap, schema_files
from shared.db import Database
from shared.db.migrate import upgrade
from shared.kafka.admin import ensure_topics
from shared.kafka.client_options import client_options
from shared.kafka.local_broker import run_coroutine_blocking
from shared.kafka.provision import kafka_bootstrap
from shared.observability.logs import configure_logging
from shared.service import ServiceDefinition
from shared.settings import PlatformSettings, ServiceSettings
from shared.system import SERVICES, load, load_all
from shared.topics import TopicNames

app = typer.Typer(
    name="leadflow",
    help="Leadflow: one pipeline from CRM and forms to graded, routed, followed-up leads.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
schemas_app = typer.Typer(help="The JSON Schemas of the event contracts.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")


def _migrate(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    database = Database(settings.database_url)
    try:
        upgrade(definition.migrations_dir, database)
    finally:
        database.dispose()


def _create_topics(bootstrap_servers: str, platform: PlatformSettings) -> list[str]:
    return run_coroutine_blocking(
        ensure_topics(
            bootstrap_servers,
            TopicNames(platform.topic_namespace),
            partitions=platform.topic_partitions,
            replication_factor=platform.topic_replication_factor,
            options=client_options(platform),
        )
    )


@app.command()
def kafka() -> None:
    """Print a Kafka bootstrap address; a broker started for it runs until Ctrl-C."""
    platform = PlatformSettings()
    with kafka_bootstrap(platform) as provisioned:
        typer.echo(provisioned.bootstrap_servers)
        typer.echo(provisioned.describe(), err=True)
        if provisioned.provider == "external":
            return
        typer.echo("Ctrl-C stops it.", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


@app.command()
def topics() -> None:
    """Create the catalog's topics (and their dead-letter topics) where missing."""
    platform = PlatformSettings()
    if not platform.kafka_bootstrap_servers:
        raise typer.BadParameter("set KAFKA_BOOTSTRAP_SERVERS to the cluster to create them on")
    created = _create_topics(platform.kafka_bootstrap_servers, platform)
    typer.echo("created: " + (", ".join(created) if created else "nothing, all exist"))


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="Services; all when omitted")] = None,
) -> None:
    """Bring service databases to the latest migration."""
    for name in services or list(SERVICES):
        definition = load(name)
        settings = definition.settings()
        _migrate(definition, settings)
        typer.echo(f"{name}: migrated {settings.database_url}")


@app.command()
def revision(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}")],
    message: Annotated[str, typer.Option("-m", "--message", help="What the migration does")],
) -> None:
    """Write a service's next migration from its models (review it before committing)."""
    import tempfile

    from shared.db.migrate import autogenerate

    definition = load(service)
    with tempfile.TemporaryDirectory() as scratch:
        path = autogenerate(
            definition.migrations_dir, definition.name, message, Path(scratch) / "head.db"
        )
    typer.echo(f"wrote {path}" if path else "no changes")


# The services' event loop: asyncio's own, not uvloop (which uvicorn[standard] would pick).
# aiokafka turns an OSError from a write to a connection the broker closed into a connection
# error it recovers from; uvloop raises RuntimeError there instead, which ends a client's
# metadata task for good, and a consumer then never finds its group again after a broker
# restart (seen in tests/test_faults.py; aiokafka issue 1038, open).
EVENT_LOOP = "asyncio"


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}")],
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind")] = None,
    migrate_first: Annotated[bool, typer.Option("--migrate", help="Migrate first")] = False,
) -> None:
    """Run one service: its HTTP API, its consumers and its workers."""
    import uvicorn

    from shared.http import create_app
    from shared.service import ServiceRuntime

    definition = load(service)
    settings = definition.settings()
    updates = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    configure_logging(
        service=service, level=settings.platform.log_level, fmt=settings.platform.log_format
    )
    if migrate_first:
        _migrate(definition, settings)
    runtime = ServiceRuntime(definition, settings)
    heap.settle()
    uvicorn.run(
        create_app(runtime),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        timeout_graceful_shutdown=30,
        loop=EVENT_LOOP,
    )


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


def _wait_ready(
    urls: dict[str, str], children: dict[str, subprocess.Popen[bytes]], timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(urls)
    while waiting and time.monotonic() < deadline:
        for name, url in list(waiting.items()):
            if children[name].poll() is not None:
                raise _fail(f"{name} exited with {children[name].returncode} while starting")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    waiting.pop(name)
        time.sleep(0.3)
    if waiting:
        raise _fail(f"not ready after {timeout:.0f}s: {', '.join(waiting)}")


def _stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each service by its PID (they drain and commit), SIGKILL what will not stop."""
    for child in children.values():
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 40
    for name, child in children.items():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            typer.echo(f"{name} did not stop in time: killing pid {child.pid}", err=True)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            child.wait(10)


@app.command()
def up(
    only: Annotated[list[str] | None, typer.Option(help="Start only these services")] = None,
) -> None:
    """Run the whole system on embedded defaults: Kafka, migrations, all five services."""
    platform = PlatformSettings()
    definitions = [load(name) for name in only] if only else load_all()
    # A SIGTERM to `leadflow up` stops the system as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    typer.echo("Providing Kafka ...", err=True)
    try:
        with kafka_bootstrap(platform) as provisioned:
            typer.echo(provisioned.describe(), err=True)
            children: dict[str, subprocess.Popen[bytes]] = {}
            try:
                _run_services(definitions, platform, provisioned.bootstrap_servers, children)
            finally:
                # Services drain and commit while the broker is still there.
                _stop_children(children)
    except KeyboardInterrupt:
        pass
    typer.echo("Stopped.", err=True)


def _run_services(
    definitions: list[ServiceDefinition],
    platform: PlatformSettings,
    bootstrap_servers: str,
    children: dict[str, subprocess.Popen[bytes]],
) -> None:
    """Migrate and start every service, report where they listen, watch them until Ctrl-C."""
    created = _create_topics(bootstrap_servers, platform)
    if created:
        typer.echo(f"created topics: {', '.join(created)}", err=True)
    urls: dict[str, str] = {}
    logs_dir = platform.data_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    for definition in definitions:
        settings = definition.settings()
        _migrate(definition, settings)
        child_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}
        with (logs_dir / f"{definition.name}.log").open("ab") as log_file:
            children[definition.name] = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "serve", definition.name],
                env=child_env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        urls[definition.name] = f"http://{settings.host}:{settings.port}"
    _wait_ready(urls, children)
    typer.echo("")
    typer.echo("Leadflow is up:")
    for name, url in urls.items():
        typer.echo(
            f"  {name:<10} {url}   (docs {url}/docs, pid {children[name].pid}, "
            f"log {_relative(logs_dir / f'{name}.log')})"
        )
    typer.echo(f"  {'kafka':<10} {bootstrap_servers}")
    typer.echo("Ctrl-C stops everything.")
    try:
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    raise _fail(f"{name} exited with {child.returncode}: see its log")
            time.sleep(0.5)
    except KeyboardInterrupt:
        typer.echo("\nStopping ...", err=True)


def _relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


@schemas_app.command("export")
def schemas_export() -> None:
    """Write shared/schemas/*.json and shared/asyncapi.yaml from the contract models."""
    for path in schema_files.export():
        typer.echo(str(path))
    typer.echo(str(asyncapi.export()))


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail when a schema file or the AsyncAPI document differs from the models."""
    stale = schema_files.drifted()
    if asyncapi.drifted():
        stale.append(asyncapi.ASYNCAPI_PATH.name)
    if stale:
        typer.echo(f"stale: {', '.join(stale)} (run `leadflow schemas export`)", err=True)
        raise typer.Exit(1)
    typer.echo("schemas match the contracts")


def _add_service_commands() -> None:
    for definition in load_all():
        if definition.cli is not None:
            app.add_typer(definition.cli)


def main() -> None:
    _add_service_commands()
    app()


if __name__ == "__main__":
    main()
