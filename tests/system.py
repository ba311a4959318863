"""The whole system as separate OS processes: the harness of the end-to-end, fault and
benchmark suites.

:class:`System` starts every service (or the ones named) with ``python -m shared.cli serve
<name>``, each on a database of its own (a PostgreSQL database per service, or a SQLite file),
migrated by the service's real migrations, on one Kafka broker under a fresh
``LEADFLOW_TOPIC_NAMESPACE``, each process on a free port of 127.0.0.1. It waits for every
``/readyz``, hands out base URLs and ready ``httpx`` clients (ingest's carry an API key made
by ingest's own code in its database), runs several replicas of a service (one consumer
group), kills a process with SIGKILL by its PID and starts it again, and stops everything by
PID at the end: SIGTERM (the services drain and commit), then SIGKILL for what will not stop.
Every process writes its log to ``<workdir>/logs/<service>-<replica>.log``; restarts append.

It needs no pytest: ``bench/`` can drive it as a context manager. The fixtures are in
``tests/conftest.py`` (``system_factory``, ``system``); docs/testing.md describes both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from shared.db import Database
from shared.db.migrate import upgrade
from shared.kafka.admin import ensure_topics
from shared.kafka.local_broker import run_coroutine_blocking
from shared.ports import free_port
from shared.system import SERVICES, load
from shared.topics import CATALOG, TopicNames

PARTITIONS = 3
# Short polls and back-offs: the system answers within a second instead of a few.
FAST_SETTINGS: dict[str, str] = {
    "OUTBOX_POLL_INTERVAL_MS": "200",
    "HANDLER_BACKOFF_INITIAL_MS": "50",
    "HANDLER_BACKOFF_MAX_MS": "500",
}


class HarnessError(RuntimeError):
    """The system could not be started or did not behave (with the processes' log tails)."""


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ServiceProcess:
    """One process of one service: ``python -m shared.cli serve <service>``."""

    service: str
    replica: int
    port: int
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def name(self) -> str:
        return f"{self.service}-{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise HarnessError(f"{self.name} is not running")
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.alive:
            raise HarnessError(f"{self.name} is running already (pid {self.pid})")
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} of {self.name} on port {self.port}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "serve", self.service],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise HarnessError(
                    f"{self.name} exited with {self.popen.returncode} while starting:\n"
                    + self.tail()
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise HarnessError(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def kill(self) -> int:
        """SIGKILL, by PID, no drain: a crash. Answers the PID that was killed."""
        popen = self.popen
        if popen is None or popen.poll() is not None:
            raise HarnessError(f"{self.name} is not running")
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait(30)
        return popen.pid

    def terminate(self, timeout: float = 40.0) -> int | None:
        """SIGTERM by PID (the service drains and commits), SIGKILL after ``timeout``.
        Answers the exit code, or None when it was not running."""
        popen = self.popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(popen.pid, signal.SIGKILL)
                popen.wait(30)
        return popen.returncode

    def restart(self, timeout: float = 120.0) -> None:
        """Start again (same port, database and group) after a kill or a stop; wait ready."""
        if self.alive:
            raise HarnessError(f"{self.name} is still running: kill() or terminate() it first")
        self.start()
        self.wait_ready(timeout)

    def tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


@dataclass
class System:
    """Every service as separate processes on a real broker and real databases.

    ``backend`` is ``postgresql`` (needs ``postgres_url``, a role that may create databases:
    a database ``<namespace>_<service>`` is created per service and dropped by :meth:`stop`)
    or ``sqlite`` (a file per service under ``workdir``). ``env`` applies to every process;
    ``service_env`` to one service's (``{"ingest": {"LEADFLOW_INGEST_HUBSPOT_CLIENT_SECRET":
    ...}}``). Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    bootstrap_servers: str
    workdir: Path
    postgres_url: str | None = None
    backend: str = "postgresql"
    services: tuple[str, ...] = tuple(SERVICES)
    replicas: Mapping[str, int] = field(default_factory=dict)
    namespace: str = field(default_factory=lambda: f"sys{uuid.uuid4().hex[:10]}")
    env: Mapping[str, str] = field(default_factory=dict)
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    fast: bool = True
    ready_timeout: float = 180.0

    def __post_init__(self) -> None:
        if self.backend not in ("postgresql", "sqlite"):
            raise ValueError(f"backend must be postgresql or sqlite, not {self.backend!r}")
        if self.backend == "postgresql" and not self.postgres_url:
            raise ValueError("the postgresql backend needs postgres_url")
        unknown = set(self.services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services: {', '.join(sorted(unknown))}")
        self.processes: dict[str, list[ServiceProcess]] = {name: [] for name in self.services}
        self.database_urls: dict[str, str] = {}
        self.api_key: str = ""
        self.topics = TopicNames(self.namespace)
        self._created_databases: list[str] = []
        self._started = False

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> System:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Create the topics and databases, migrate them, make ingest's API key, start
        every process and wait until each answers ``/readyz``."""
        if self._started:
            raise HarnessError("started already")
        self._started = True
        try:
            run_coroutine_blocking(
                ensure_topics(self.bootstrap_servers, self.topics, CATALOG, partitions=PARTITIONS)
            )
            for name in self.services:
                self.database_urls[name] = self._create_database(name)
                database = Database(self.database_urls[name])
                try:
                    upgrade(load(name).migrations_dir, database)
                finally:
                    database.dispose()
            if "ingest" in self.services:
                self.api_key = self.create_ingest_api_key("system-harness")
            for name in self.services:
                for _ in range(self.replicas.get(name, 1)):
                    self._spawn(name)
            for process in self.all_processes():
                process.wait_ready(self.ready_timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 40.0) -> dict[str, int | None]:
        """SIGTERM every process by PID, SIGKILL what has not stopped after ``timeout``;
        drop the databases this system created. Answers each process's exit code."""
        codes: dict[str, int | None] = {}
        for process in self.all_processes():
            if process.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        for process in self.all_processes():
            codes[process.name] = process.terminate(timeout)
        for database in self._created_databases:
            with contextlib.suppress(psycopg.Error):
                self._pg_execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
        self._created_databases.clear()
        return codes

    # ------------------------------------------------------------------ processes

    def _spawn(self, service: str) -> ServiceProcess:
        replica = len(self.processes[service])
        port = free_port()
        prefix = f"LEADFLOW_{service.upper()}_"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "LEADFLOW_TOPIC_NAMESPACE": self.namespace,
            "LEADFLOW_DATA_DIR": str(self.workdir / "data"),
            "LEADFLOW_LOG_FORMAT": "json",
            **{
                f"{prefix}{key}": value
                for key, value in (FAST_SETTINGS if self.fast else {}).items()
            },
            **self.env,
            **self.service_env.get(service, {}),
            f"{prefix}DATABASE_URL": self.database_urls[service],
            f"{prefix}PORT": str(port),
            f"{prefix}HOST": "127.0.0.1",
        }
        process = ServiceProcess(
            service=service,
            replica=replica,
            port=port,
            env=env,
            log_path=self.workdir / "logs" / f"{service}-{replica}.log",
        )
        self.processes[service].append(process)
        process.start()
        return process

    def add_replica(self, service: str) -> ServiceProcess:
        """One more process of ``service`` (same database, same consumer group), ready."""
        process = self._spawn(service)
        process.wait_ready(self.ready_timeout)
        return process

    def process(self, service: str, replica: int = 0) -> ServiceProcess:
        return self.processes[service][replica]

    def all_processes(self) -> Iterator[ServiceProcess]:
        for processes in self.processes.values():
            yield from processes

    def kill(self, service: str, replica: int = 0) -> int:
        """SIGKILL one process by its PID (a crash); answers the PID."""
        return self.process(service, replica).kill()

    def restart(self, service: str, replica: int = 0) -> ServiceProcess:
        """Start a killed or stopped process again and wait until it is ready."""
        process = self.process(service, replica)
        process.restart(self.ready_timeout)
        return process

    # ------------------------------------------------------------------ clients

    def url(self, service: str, replica: int = 0) -> str:
        return self.process(service, replica).url

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self.services}

    def headers(self, service: str) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if service == "ingest" and self.api_key else {}

    def client(self, service: str, replica: int = 0, **options: Any) -> httpx.Client:
        """A client of one process (ingest's sends the API key); close it, or use ``with``."""
        options.setdefault("timeout", 30.0)
        return httpx.Client(
            base_url=self.url(service, replica), headers=self.headers(service), **options
        )

    def async_client(self, service: str, replica: int = 0, **options: Any) -> httpx.AsyncClient:
        options.setdefault("timeout", 30.0)
        return httpx.AsyncClient(
            base_url=self.url(service, replica), headers=self.headers(service), **options
        )

    # ------------------------------------------------------------------ databases

    def database(self, service: str) -> Database:
        """An engine on a service's database, to look inside (dispose it afterwards)."""
        return Database(self.database_urls[service])

    def create_ingest_api_key(self, name: str) -> str:
        """A key for ingest's JSON and import doors, made by ingest's own code in its
        database (what ``leadflow apikey create`` does)."""
        from services.ingest.auth import create_key

        database = self.database("ingest")
        try:
            with database.transaction() as session:
                return create_key(session, name=name)
        finally:
            database.dispose()

    def _create_database(self, service: str) -> str:
        if self.backend == "sqlite":
            path = self.workdir / "data" / f"{service}.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}"
        assert self.postgres_url is not None
        name = f"{self.namespace}_{service}"
        self._pg_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created_databases.append(name)
        return make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)

    def _pg_execute(self, statement: sql.Composed) -> None:
        assert self.postgres_url is not None
        admin = make_url(self.postgres_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(statement)

    # ------------------------------------------------------------------ reports

    def log_tails(self, lines: int = 40) -> dict[str, str]:
        """The last lines of every process's log, by process name."""
        return {process.name: process.tail(lines) for process in self.all_processes()}

    def describe(self) -> str:
        rows = [f"namespace {self.namespace}, {self.backend}"]
        for process in self.all_processes():
            state = f"pid {process.pid}" if process.alive else "stopped"
            rows.append(f"  {process.name:<12} {process.url}  {state}  log {process.log_path}")
        return "\n".join(rows)
