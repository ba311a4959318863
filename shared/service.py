"""What a service is made of, and the runtime that runs one in a process.

A service declares a :class:`ServiceDefinition` (its settings, tables, migrations, HTTP
routers, consumers and background workers). :class:`ServiceRuntime` is the composition root:
it builds the real adapters (database, producer, outbox relay, consumers) from settings and
starts and stops them with the FastAPI app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import MetaData

from shared.db import Database, RuntimeTables
from shared.kafka.client_options import client_options
from shared.kafka.consumer import ConsumerHooks, EventConsumer, Handlers, RetryPolicy
from shared.kafka.producer import create_producer
from shared.observability.logs import get_logger
from shared.outbox import Outbox, OutboxRelay
from shared.settings import ServiceSettings
from shared.stopping import sleep_or_stop
from shared.topics import TopicNames

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

log = get_logger(__name__)

Worker = Callable[["ServiceRuntime", asyncio.Event], Awaitable[None]]

# Each readiness check's bound. The checks run side by side, so /readyz answers within about
# this long however many hang: inside the Helm chart's probe timeout (3 s) and the clients'.
READINESS_CHECK_TIMEOUT_S = 2.5


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group of a service. Most services have one, with no name of its own."""

    handlers: Handlers
    name: str = ""


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    description: str
    settings: Callable[[], ServiceSettings]
    metadata: MetaData
    tables: RuntimeTables
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    workers: Sequence[Worker] = ()
    cli: typer.Typer | None = None


class KafkaNotConfigured(RuntimeError):
    pass


@dataclass
class ServiceRuntime:
    definition: ServiceDefinition
    settings: ServiceSettings
    bootstrap_servers: str | None = None
    consumer_hooks: ConsumerHooks = field(default_factory=ConsumerHooks)

    def __post_init__(self) -> None:
        self.bootstrap_servers = (
            self.bootstrap_servers or self.settings.platform.kafka_bootstrap_servers
        )
        self.db = Database(self.settings.database_url)
        self.names = TopicNames(self.settings.platform.topic_namespace)
        self.kafka_options = client_options(self.settings.platform)
        self.outbox = Outbox(self.definition.tables, source=f"/leadflow/{self.name}")
        self.relay = OutboxRelay(
            service=self.name,
            db=self.db,
            tables=self.definition.tables,
            names=self.names,
            batch_size=self.settings.outbox_batch_size,
            poll_interval=self.settings.outbox_poll_interval_ms / 1000,
            linger=self.settings.outbox_linger_ms / 1000,
            retention=timedelta(hours=self.settings.outbox_retention_hours),
        )
        self.consumers: list[EventConsumer] = []
        self.producer: AIOKafkaProducer | None = None
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Anything a service wants to keep for its routes and workers (caches, clocks ...).
        self.state: dict[str, Any] = {}
        # The readiness probe's database check has a thread of its own: on the event loop's
        # default executor it would queue behind the service's own database work, and a
        # busy service would answer that its database is unreachable.
        self._probe_thread = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-readiness")

    @property
    def name(self) -> str:
        return self.definition.name

    def consumer_group(self, spec: ConsumerSpec) -> str:
        base = self.settings.consumer_group
        return f"{base}.{spec.name}" if spec.name else base

    def build_consumers(self) -> list[EventConsumer]:
        assert self.bootstrap_servers
        retry = RetryPolicy(
            max_attempts=self.settings.handler_max_attempts,
            initial_backoff=self.settings.handler_backoff_initial_ms / 1000,
            max_backoff=self.settings.handler_backoff_max_ms / 1000,
        )
        return [
            EventConsumer(
                name=self.consumer_group(spec),
                service=self.name,
                handlers=spec.handlers,
                db=self.db,
                tables=self.definition.tables,
                outbox=self.outbox,
                bootstrap_servers=self.bootstrap_servers,
                names=self.names,
                retry=retry,
                max_batch=self.settings.consumer_max_batch,
                fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
                fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
                hooks=self.consumer_hooks,
                on_committed=self.relay.notify,
                client_options=self.kafka_options,
            )
            for spec in self.definition.consumers
        ]

    async def start(self) -> None:
        if not self.bootstrap_servers:
            raise KafkaNotConfigured(
                "KAFKA_BOOTSTRAP_SERVERS is not set: start the system with `leadflow up`, "
                "or point the service at a cluster"
            )
        self.stopping = asyncio.Event()
        self.consumers = self.build_consumers()
        self._tasks = [asyncio.create_task(self._run_kafka(), name=f"{self.name}-kafka")]
        for worker in self.definition.workers:
            self._tasks.append(asyncio.create_task(self._guard(worker), name=worker.__name__))

    async def _guard(self, worker: Worker) -> None:
        """Keep a background worker alive: log and restart it if it raises."""
        while not self.stopping.is_set():
            try:
                await worker(self, self.stopping)
                return
            except Exception:
                log.exception("background worker failed, restarting", worker=worker.__name__)
                await sleep_or_stop(self.stopping, 2.0)

    async def _run_kafka(self) -> None:
        assert self.bootstrap_servers
        delay = 0.5
        producer: AIOKafkaProducer | None = None
        while not self.stopping.is_set():
            producer = create_producer(
                self.bootstrap_servers,
                client_id=f"leadflow-{self.name}",
                options=self.kafka_options,
            )
            try:
                await producer.start()
                break
            except KafkaError as error:
                log.warning("producer cannot reach Kafka yet", error=repr(error), retry_in=delay)
                with contextlib.suppress(Exception):
                    await producer.stop()
                producer = None
                await sleep_or_stop(self.stopping, delay)
                delay = min(delay * 2, 10.0)
        if producer is None:
            return
        self.producer = producer
        try:
            await asyncio.gather(
                self.relay.run(producer, self.stopping),
                *(self._keep_consuming(consumer, producer) for consumer in self.consumers),
            )
        finally:
            self.producer = None
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _keep_consuming(self, consumer: EventConsumer, producer: AIOKafkaProducer) -> None:
        """A consumer loop that dies of a bug is restarted: it rejoins its group and reads
        from its last committed offset, so nothing is skipped."""
        while not self.stopping.is_set():
            try:
                await consumer.run(producer, self.stopping)
                return
            except Exception:
                log.exception("consumer failed, restarting", consumer=consumer.name)
                await sleep_or_stop(self.stopping, 2.0)

    async def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception():
                    log.error(
                        "task ended with an error",
                        task=task.get_name(),
                        error=repr(task.exception()),
                    )
        self._tasks = []
        self.db.dispose()

    async def readiness(self) -> dict[str, str]:
        return await run_checks(
            {"database": self._database_check, "kafka": self._kafka_check},
            timeout=READINESS_CHECK_TIMEOUT_S,
        )

    async def _database_check(self) -> str:
        await asyncio.get_running_loop().run_in_executor(self._probe_thread, self.db.ping)
        return "ok"

    async def _kafka_check(self) -> str:
        producer = self.producer
        if producer is None:
            return "not connected"
        await producer.client.fetch_all_metadata()
        return "ok"


async def run_checks(
    checks: Mapping[str, Callable[[], Awaitable[str]]], *, timeout: float
) -> dict[str, str]:
    """Run named checks concurrently, each bounded by ``timeout``: a check answers with its
    state, or ``unreachable: <error>`` when it raised or ran out of time."""

    async def bounded(check: Callable[[], Awaitable[str]]) -> str:
        try:
            return await asyncio.wait_for(check(), timeout)
        except Exception as error:
            return f"unreachable: {type(error).__name__}"

    answers = await asyncio.gather(*(bounded(check) for check in checks.values()))
    return dict(zip(checks, answers, strict=True))
