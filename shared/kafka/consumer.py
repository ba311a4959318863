"""The consumer loop every service runs.

For each batch a partition yields:

1. one database transaction: the records are decoded and their event ids recorded in
   ``processed_events`` by one insert, which tells the ids this consumer processed before;
   those are skipped, the others handled; the handlers' outgoing events go to the outbox in
   that same transaction;
2. the transaction commits; only then is the partition's offset committed to Kafka (in the
   background, while the next batch is handled).

A payload type may have a batch handler (``Handlers.on_batch``): consecutive records of that
type (or of the types sharing that handler) in a batch are handed to it together, in order,
so it can read and write them with a few statements. If it raises, the batch is re-run with a
savepoint per record and the batch handler called with one record at a time, which finds the
record at fault.

A record whose handler raises stops the batch there: what came before it is committed, the
record is retried alone with backoff, and after the last attempt it goes to
``<topic>.dlq`` with the error and its original coordinates in headers; the partition moves
on. A record that is not a Leadflow CloudEvent at all goes to the dead-letter topic at once.
An infrastructure failure (the database unreachable) is not the record's fault: it is retried
until it passes or the consumer is stopped, and nothing is dead-lettered for it.

Stopping (SIGTERM) lets the batch in hand finish and commit, then leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from sqlalchemy import Table, TextClause, bindparam, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from shared.cloudevents import Event, MalformedEvent, decode, format_time
from shared.contracts import EventPayload
from shared.db import Database, RuntimeTables
from shared.observability.logs import get_logger
from shared.observability.metrics import (
    CONSUMER_BATCH_SECONDS,
    CONSUMER_LAG,
    CONSUMER_WAIT_SECONDS,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_FAILED,
    HANDLER_SECONDS,
)
from shared.outbox import Outbox
from shared.stopping import sleep_or_stop
from shared.topics import TopicNames, dlq_of, topic_for

log = get_logger(__name__)

P = TypeVar("P", bound=EventPayload)


class Record(Protocol):
    """The parts of a consumed Kafka record the runtime uses (aiokafka ships no types)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int


R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class HandlerContext:
    """What a handler gets besides its payload: the transaction, the event, the outbox."""

    session: Session
    event: Event[EventPayload]
    outbox: Outbox
    topic: str
    partition: int
    offset: int

    def emit(self, payload: EventPayload, *, time: datetime | None = None) -> Event[EventPayload]:
        """Publish an event after this transaction commits (through the outbox)."""
        return self.outbox.add(self.session, payload, time=time)


Handler = Callable[[HandlerContext, Any], None]
# A batch handler gets consecutive records of its type, each with its own context.
BatchHandler = Callable[[Sequence[tuple[HandlerContext, Any]]], None]


class Handlers:
    """The registry of one consumer: which handler runs for which payload type."""

    def __init__(self) -> None:
        self._by_type: dict[type[EventPayload], Handler] = {}
        self._batches: dict[type[EventPayload], BatchHandler] = {}

    def on(self, payload_type: type[P]) -> Callable[[Callable[[HandlerContext, P], None]], Handler]:
        def register(handler: Callable[[HandlerContext, P], None]) -> Handler:
            if payload_type in self._by_type:
                raise ValueError(f"{payload_type.__name__} already has a handler")
            self._by_type[payload_type] = handler
            return handler

        return register

    def on_batch(
        self, payload_type: type[P]
    ) -> Callable[
        [Callable[[Sequence[tuple[HandlerContext, P]]], None]],
        Callable[[Sequence[tuple[HandlerContext, P]]], None],
    ]:
        """Register a handler of consecutive records of ``payload_type`` together: it gets
        ``(context, payload)`` pairs in order and must apply them as one by one would. It is
        also called with a single pair (a record retried alone, a replay). One handler
        registered for several types gets their consecutive records together, whatever
        their mix: a consumer of several topics sees their records interleaved in time."""

        def register(
            handler: Callable[[Sequence[tuple[HandlerContext, P]]], None],
        ) -> Callable[[Sequence[tuple[HandlerContext, P]]], None]:
            if payload_type in self._by_type:
                raise ValueError(f"{payload_type.__name__} already has a handler")
            self._batches[payload_type] = handler
            self._by_type[payload_type] = lambda context, payload: handler([(context, payload)])
            return handler

        return register

    def get(self, payload_type: type[EventPayload]) -> Handler | None:
        return self._by_type.get(payload_type)

    def get_batch(self, payload_type: type[EventPayload]) -> BatchHandler | None:
        return self._batches.get(payload_type)

    @property
    def topics(self) -> list[str]:
        """Logical topics this registry needs, from the catalog."""
        return sorted({topic_for(payload).name for payload in self._by_type})


@dataclass
class ConsumerHooks:
    """Seams for fault-injection tests: called around the database commit of a batch."""

    before_db_commit: Callable[[Sequence[Record]], None] | None = None
    after_db_commit: Callable[[Sequence[Record]], None] | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, failed_attempts: int) -> float:
        return float(min(self.max_backoff, self.initial_backoff * 2 ** (failed_attempts - 1)))


@dataclass
class _Failure:
    error: BaseException
    malformed: bool = False
    transient: bool = False


class _BatchHandlerFailed(Exception):
    """Aborts a fast-path transaction: a batch handler raised, the record is not known."""


class _HandlerFailed(Exception):
    """Aborts a fast-path transaction: the handler of record ``index`` raised."""

    def __init__(self, index: int, failure: _Failure) -> None:
        super().__init__(index)
        self.index = index
        self.failure = failure


@dataclass(frozen=True, slots=True)
class _Pending:
    """A record waiting in a run for its batch handler."""

    index: int
    context: HandlerContext
    payload: Any


@dataclass
class _BatchOutcome:
    done: int
    failure: _Failure | None = None
    effects: int = 0


def is_transient(error: BaseException) -> bool:
    """Failures of the infrastructure, not of the record: retried, never dead-lettered."""
    return isinstance(
        error,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError
        | ConnectionError,
    )


@dataclass
class EventConsumer:
    name: str
    service: str
    handlers: Handlers
    db: Database
    tables: RuntimeTables
    outbox: Outbox
    bootstrap_servers: str
    names: TopicNames = field(default_factory=TopicNames)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_batch: int = 500
    # fetch.min.bytes and fetch.max.wait.ms (ServiceSettings says why).
    fetch_min_bytes: int = 1
    fetch_max_wait_ms: int = 500
    hooks: ConsumerHooks = field(default_factory=ConsumerHooks)
    on_committed: Callable[[], None] | None = None
    topics: list[str] | None = None
    # Connection settings (security) from shared.kafka.client_options.
    client_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._consumer: AIOKafkaConsumer | None = None
        self._lag_checked = 0.0
        self._metric_children: dict[tuple[int, str], Any] = {}
        self._transaction_seconds = CONSUMER_BATCH_SECONDS.labels(self.service, "transaction")
        self._offset_commit_seconds = CONSUMER_BATCH_SECONDS.labels(self.service, "offset_commit")
        self._committing: asyncio.Task[None] | None = None
        # Offsets of handled batches not yet sent to the group coordinator.
        self._uncommitted: dict[TopicPartition, int] = {}
        self.started = asyncio.Event()

    @property
    def logical_topics(self) -> list[str]:
        return self.topics if self.topics is not None else self.handlers.topics

    # ------------------------------------------------------------------ the loop

    async def run(self, producer: AIOKafkaProducer, stopping: asyncio.Event) -> None:
        consumer = await self._start(stopping)
        if consumer is None:
            return
        try:
            while not stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=self.max_batch)
                records = in_time_order(batches.values())
                if records:
                    self._observe_wait(records)
                    await self._process(consumer, producer, records, stopping)
                await self._update_lag(consumer)
        finally:
            self._consumer = None
            try:
                await self._offsets_committed()
            except Exception as error:
                # Handled and committed to the database: the next owner skips them.
                log.warning("last offset commit failed", consumer=self.name, error=repr(error))
            # Left by a failed commit: a consumer started again reads from what the group
            # has, and skips what it handled.
            self._uncommitted.clear()
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _start(self, stopping: asyncio.Event) -> AIOKafkaConsumer | None:
        physical = [self.names.physical(topic) for topic in self.logical_topics]
        delay = 0.5
        while not stopping.is_set():
            consumer = AIOKafkaConsumer(
                *physical,
                **self.client_options,
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.names.group(self.name),
                client_id=f"{self.service}-{self.name}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.max_batch,
                fetch_min_bytes=self.fetch_min_bytes,
                fetch_max_wait_ms=self.fetch_max_wait_ms,
                # A batch may sit behind a slow database for a while; do not get kicked out.
                max_poll_interval_ms=600_000,
            )
            try:
                await consumer.start()
            except KafkaError as error:
                log.warning("consumer cannot reach Kafka yet", error=repr(error), retry_in=delay)
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await sleep_or_stop(stopping, delay)
                delay = min(delay * 2, 10.0)
                continue
            self._consumer = consumer
            self.started.set()
            log.info("consumer started", consumer=self.name, topics=physical)
            return consumer
        return None

    async def _process(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        records: list[Record],
        stopping: asyncio.Event,
    ) -> None:
        """Handle a fetched batch (records of several partitions, each in order)."""
        pending = records
        transient_delay = self.retry.initial_backoff
        while pending:
            started = time.perf_counter()
            outcome = await asyncio.to_thread(self._apply_batch, pending)
            self._transaction_seconds.observe(time.perf_counter() - started)
            if outcome.done:
                await self._commit(consumer, pending[: outcome.done])
            failure = outcome.failure
            if failure is None:
                return
            if failure.transient:
                log.warning(
                    "database unavailable, retrying batch",
                    error=repr(failure.error),
                    retry_in=transient_delay,
                )
                pending = pending[outcome.done :]
                if stopping.is_set():
                    return  # uncommitted: the next owner of these partitions reads them
                await sleep_or_stop(stopping, transient_delay)
                transient_delay = min(transient_delay * 2, self.retry.max_backoff)
                continue
            failed = pending[outcome.done]
            settled = await self._settle_failed_record(
                consumer, producer, failed, failure, stopping
            )
            if not settled:
                return  # stopping: the record stays uncommitted for the next owner
            pending = pending[outcome.done + 1 :]

    async def _settle_failed_record(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        record: Record,
        failure: _Failure,
        stopping: asyncio.Event,
    ) -> bool:
        """Retry one failed record, then dead-letter it. False if stopped before settling."""
        attempts = 1
        logical = self.names.logical(record.topic)
        while not failure.malformed and attempts < self.retry.max_attempts:
            delay = self.retry.delay(attempts)
            log.warning(
                "handler failed, retrying",
                topic=logical,
                offset=record.offset,
                attempt=attempts,
                error=repr(failure.error),
                retry_in=delay,
            )
            await sleep_or_stop(stopping, delay)
            if stopping.is_set():
                return False
            outcome = await asyncio.to_thread(self._apply_batch, [record])
            if outcome.failure is None:
                await self._commit(consumer, [record])
                return True
            if outcome.failure.transient:
                continue  # not the record's fault: does not use up an attempt
            failure = outcome.failure
            attempts += 1
        if not await self._dead_letter(producer, record, failure, attempts, stopping):
            return False
        await self._commit(consumer, [record])
        return True

    # ------------------------------------------------------------------ one transaction

    def _apply_batch(self, records: Sequence[Record]) -> _BatchOutcome:
        """Runs in a worker thread. Handles records in one transaction and commits what
        succeeded before the first failure; the outcome says how far it got and why it
        stopped.

        The fast path has no savepoints: one transaction, the handlers, one multi-row insert
        of processed events, one commit. When a handler raises, the transaction is rolled
        back and the records before it are applied again without it. When the commit itself
        fails and no record can be blamed, the batch is re-run with a savepoint per record
        to find the one that breaks it.
        """
        started = time.perf_counter()
        try:
            try:
                outcome = self._run_transaction(records, isolate=False)
            except _HandlerFailed as failed:
                outcome = (
                    self._run_transaction(records[: failed.index], isolate=False)
                    if failed.index
                    else _BatchOutcome(done=0)
                )
                if outcome.failure is None:
                    outcome.failure = failed.failure
            except Exception as error:
                if is_transient(error):
                    raise
                try:
                    outcome = self._run_transaction(records, isolate=True)
                except Exception as isolated_error:
                    if is_transient(isolated_error):
                        raise
                    # Even one savepoint per record cannot tell: blame the first record; it
                    # is retried alone, and dead-lettered if it keeps failing.
                    outcome = _BatchOutcome(done=0, failure=_Failure(isolated_error))
        except Exception as error:
            if not is_transient(error):
                raise
            return _BatchOutcome(done=0, failure=_Failure(error, transient=True))
        if self.hooks.after_db_commit and outcome.done:
            self.hooks.after_db_commit(records[: outcome.done])
        if outcome.done:
            self._count(records[: outcome.done], (time.perf_counter() - started) / outcome.done)
        if outcome.effects and self.on_committed:
            self.on_committed()
        return outcome

    def _run_transaction(self, records: Sequence[Record], *, isolate: bool) -> _BatchOutcome:
        """One transaction over ``records``. Without ``isolate`` a failing handler aborts it
        (:class:`_HandlerFailed`); with it, each record has a savepoint and the transaction
        commits what came before the failure."""
        outcome = _BatchOutcome(done=0)
        if not records:
            return outcome
        events, malformed = _decode_until_malformed(records)
        with self.db.transaction() as session:
            if isolate:
                seen = self._already_processed(session, records)
                self._handle_records(
                    session, records, events, isolate=True, seen=seen, outcome=outcome
                )
            else:
                seen = self._claim(session, records, events)
                # The fast path writes the events its handlers emit in one insert before the
                # commit; with a savepoint per record they must be written as they come.
                with self.outbox.buffered(session):
                    self._handle_records(
                        session, records, events, isolate=False, seen=seen, outcome=outcome
                    )
            if malformed is not None and outcome.failure is None:
                outcome.failure = _Failure(malformed, malformed=True)
            if self.hooks.before_db_commit:
                self.hooks.before_db_commit(records[: outcome.done])
        return outcome

    def _processed_row(self, record: Record, event: Event[EventPayload]) -> dict[str, Any]:
        return {
            "consumer": self.name,
            "event_id": event.id,
            "topic": self.names.logical(record.topic),
            "partition": record.partition,
            "offset": record.offset,
            "outcome": "processed",
            "processed_at": datetime.now(UTC),
        }

    def _claim(
        self, session: Session, records: Sequence[Record], events: Sequence[Event[EventPayload]]
    ) -> set[str]:
        """Fast path: record in ``processed_events``, with one insert that skips the ids it
        already holds, every event of the batch a handler will act on; answer the ids that
        were there before (processed already). The rows go with the transaction: if a handler
        fails, they are rolled back with its effects. The insert goes through the primary
        key, where a lookup by a list of ids may be planned as a scan of the consumer's rows
        (a table grown faster than its statistics)."""
        rows: dict[str, dict[str, Any]] = {}
        for record, event in zip(records, events, strict=False):
            if event.id not in rows and self.handlers.get(type(event.data)) is not None:
                rows[event.id] = self._processed_row(record, event)
        if not rows:
            return set()
        processed = self.tables.processed_events
        if self.db.is_postgresql:
            # One statement of four arrays: its text never changes, so it is parsed and
            # planned once per connection, where a multi-row VALUES of the batch cost the
            # client ~40 µs a row to build and convert (~5 µs this way).
            values = list(rows.values())
            claimed = set(
                session.execute(
                    _claim_by_arrays(processed),
                    {
                        "consumer": self.name,
                        "processed_at": values[0]["processed_at"],
                        "event_ids": [row["event_id"] for row in values],
                        "topics": [row["topic"] for row in values],
                        "partitions": [row["partition"] for row in values],
                        "offsets": [row["offset"] for row in values],
                    },
                ).scalars()
            )
        else:
            claim = (
                sqlite.insert(processed)
                .on_conflict_do_nothing(index_elements=[processed.c.consumer, processed.c.event_id])
                .returning(processed.c.event_id)
            )
            claimed = set(session.execute(claim, list(rows.values())).scalars())
        return set(rows) - claimed

    def _handle_records(
        self,
        session: Session,
        records: Sequence[Record],
        events: Sequence[Event[EventPayload]],
        *,
        isolate: bool,
        seen: set[str],
        outcome: _BatchOutcome,
    ) -> None:
        """Handle ``events`` (the decoded ``records`` up to the first malformed one). On the
        fast path their ``processed_events`` rows are written already (:meth:`_claim`); with
        ``isolate`` each is written in its record's savepoint."""
        processed = self.tables.processed_events
        # Consecutive records of a type with a batch handler, waiting to be handled together
        # (fast path only).
        run: list[_Pending] = []
        for index, (record, event) in enumerate(zip(records, events, strict=False)):
            handler = self.handlers.get(type(event.data))
            if event.id in seen or handler is None:
                # Already processed, or a type this consumer does not act on.
                if event.id in seen:
                    self._metric(EVENTS_DUPLICATE, record).inc()
                outcome.done = index + 1
                continue
            logical = self.names.logical(record.topic)
            context = HandlerContext(
                session, event, self.outbox, logical, record.partition, record.offset
            )
            batch_handler = None if isolate else self.handlers.get_batch(type(event.data))
            if batch_handler is not None:
                if run and self.handlers.get_batch(type(run[0].payload)) is not batch_handler:
                    self._handle_run(run, outcome)
                run.append(_Pending(index, context, event.data))
                seen.add(event.id)
                continue
            self._handle_run(run, outcome)
            structlog.contextvars.bind_contextvars(event_id=event.id, lead_id=event.subject)
            try:
                if isolate:
                    with session.begin_nested():
                        handler(context, event.data)
                        session.execute(
                            processed.insert().values(**self._processed_row(record, event))
                        )
                else:
                    handler(context, event.data)
            except Exception as error:
                if is_transient(error):
                    raise
                self._metric(EVENTS_FAILED, record).inc()
                if not isolate:
                    raise _HandlerFailed(index, _Failure(error)) from error
                outcome.failure = _Failure(error)
                break
            finally:
                structlog.contextvars.unbind_contextvars("event_id", "lead_id")
            seen.add(event.id)
            outcome.done = index + 1
            outcome.effects += 1
        else:
            self._handle_run(run, outcome)

    def _handle_run(self, run: list[_Pending], outcome: _BatchOutcome) -> None:
        """Hand ``run`` to its batch handler; then its records are done."""
        if not run:
            return
        batch_handler = self.handlers.get_batch(type(run[0].payload))
        assert batch_handler is not None
        try:
            batch_handler([(pending.context, pending.payload) for pending in run])
        except Exception as error:
            if is_transient(error):
                raise
            # Which record is at fault is not known: the batch is re-run with a savepoint
            # per record, the batch handler called with one record at a time.
            raise _BatchHandlerFailed() from error
        outcome.done = max(outcome.done, run[-1].index + 1)
        outcome.effects += len(run)
        run.clear()

    def _count(self, records: Sequence[Record], seconds_each: float) -> None:
        for record in records:
            self._metric(EVENTS_CONSUMED, record).inc()
            self._metric(HANDLER_SECONDS, record).observe(seconds_each)

    def _observe_wait(self, records: Sequence[Record]) -> None:
        """How long each record waited to be handled since it was produced. The timestamp is
        the producer's clock: one ahead of this machine's would give a negative wait, counted
        as none."""
        now = time.time()
        for record in records:
            waited = now - record.timestamp / 1000
            self._metric(CONSUMER_WAIT_SECONDS, record).observe(max(0.0, waited))

    def _metric(self, metric: Any, record: Record) -> Any:
        """The metric's child for this service and the record's topic, cached."""
        key = (id(metric), record.topic)
        child = self._metric_children.get(key)
        if child is None:
            child = metric.labels(self.service, self.names.logical(record.topic))
            self._metric_children[key] = child
        return child

    def _already_processed(self, session: Session, records: Sequence[Record]) -> set[str]:
        ids = {value for value in (_ce_id(record) for record in records) if value}
        if not ids:
            return set()
        processed = self.tables.processed_events
        rows = session.execute(
            select(processed.c.event_id).where(
                processed.c.consumer == self.name, processed.c.event_id.in_(ids)
            )
        )
        return {row[0] for row in rows}

    # ------------------------------------------------------------------ dead letters

    async def _dead_letter(
        self,
        producer: AIOKafkaProducer,
        record: Record,
        failure: _Failure,
        attempts: int,
        stopping: asyncio.Event,
    ) -> bool:
        """Write the record to its dead-letter topic; False if stopped before it was written."""
        logical = self.names.logical(record.topic)
        error = failure.error
        headers = [
            *[(k, v) for k, v in record.headers if not k.startswith("dlq_")],
            ("dlq_error", f"{type(error).__name__}: {error}"[:8000].encode()),
            ("dlq_error_type", type(error).__name__.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_service", self.service.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", format_time(datetime.now(UTC)).encode()),
        ]
        delay = self.retry.initial_backoff
        while True:
            try:
                await producer.send_and_wait(
                    self.names.physical(dlq_of(logical)),
                    value=record.value,
                    key=record.key,
                    headers=headers,
                )
                break
            except KafkaError as send_error:
                # Never move past a record that is neither handled nor dead-lettered.
                log.error("cannot write dead letter, retrying", error=repr(send_error))
                if stopping.is_set():
                    return False
                await sleep_or_stop(stopping, delay)
                delay = min(delay * 2, 10.0)
        EVENTS_DEAD_LETTERED.labels(self.service, logical).inc()
        log.error(
            "record dead-lettered",
            topic=logical,
            partition=record.partition,
            offset=record.offset,
            attempts=attempts,
            error=f"{type(error).__name__}: {error}",
            event_id=_ce_id(record),
        )
        await asyncio.to_thread(self._mark_dead_lettered, record)
        return True

    def _mark_dead_lettered(self, record: Record) -> None:
        """Remember the dead letter so a redelivery is not dead-lettered twice."""
        event_id = _ce_id(record)
        if not event_id:
            return
        processed = self.tables.processed_events
        with contextlib.suppress(sa_exc.IntegrityError), self.db.transaction() as session:
            session.execute(
                processed.insert().values(
                    consumer=self.name,
                    event_id=event_id,
                    topic=self.names.logical(record.topic),
                    partition=record.partition,
                    offset=record.offset,
                    outcome="dead_lettered",
                    processed_at=datetime.now(UTC),
                )
            )

    # ------------------------------------------------------------------ offsets and lag

    async def _commit(self, consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
        """Commit, for each partition among ``records``, the offset after its last one.

        The commit is sent in the background: the loop fetches and handles the next batch
        while the broker answers (a round trip to the group coordinator, ~8 ms a batch on a
        busy machine, was spent waiting before every fetch). One commit is in flight at a
        time, so they reach the broker in order. The batches handled while one is in flight
        are committed together when it is answered (at 200 leads/s, a commit's p99 was
        ~80 ms, the time for one or two more batches, which waited for it), and the
        consumer waits for them all before it leaves the group. The database has committed
        the records already: a crash before the offsets are committed hands them to the next
        owner, which skips them as processed."""
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._uncommitted[tp] = max(self._uncommitted.get(tp, 0), record.offset + 1)
        committing = self._committing
        if committing is not None and not committing.done():
            return  # its task commits these offsets next
        await self._offsets_committed()  # raises the failure of the last, if it failed
        self._committing = asyncio.create_task(self._commit_uncommitted(consumer))

    async def _commit_uncommitted(self, consumer: AIOKafkaConsumer) -> None:
        while self._uncommitted:
            offsets, self._uncommitted = self._uncommitted, {}
            await self._commit_offsets(consumer, offsets)

    async def _offsets_committed(self) -> None:
        """Wait for the commits in flight, if any (their failure is raised here)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def _commit_offsets(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
    ) -> None:
        started = time.perf_counter()
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # The partition moved to another member during a rebalance. Its new owner reads
            # from the last committed offset and skips what this one already processed.
            log.warning(
                "offset commit refused after rebalance", offsets=str(offsets), error=repr(error)
            )
        self._offset_commit_seconds.observe(time.perf_counter() - started)

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._lag_checked < 5.0:
            return
        self._lag_checked = now
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            with contextlib.suppress(Exception):
                # position() waits, without end, for a partition whose position is not
                # known yet (after a rebalance); the loop must never stop for a metric.
                position = await asyncio.wait_for(consumer.position(tp), timeout=0.5)
                CONSUMER_LAG.labels(
                    self.service, self.names.logical(tp.topic), str(tp.partition)
                ).set(max(0, highwater - position))


def in_time_order(partitions: Iterable[Sequence[R]]) -> list[R]:
    """One fetch's records, each partition's in its own order, interleaved by their
    timestamps: a lead's events on several topics (routed, then feedback) are handled in the
    order they were written, as when they come one fetch each, not partition after
    partition."""
    return list(heapq.merge(*partitions, key=lambda record: record.timestamp))


@functools.cache
def _claim_by_arrays(processed: Table) -> TextClause:
    """PostgreSQL: insert the processed events given as arrays, skip the ids already there,
    answer the ids inserted."""
    return text(
        f"INSERT INTO {processed.name}"
        ' (consumer, event_id, topic, partition, "offset", outcome, processed_at)'
        " SELECT :consumer, e.event_id, e.topic, e.partition, e.offset, 'processed',"
        " :processed_at FROM unnest(CAST(:event_ids AS varchar[]), CAST(:topics AS varchar[]),"
        " CAST(:partitions AS integer[]), CAST(:offsets AS bigint[]))"
        ' AS e(event_id, topic, partition, "offset")'
        " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"
    ).bindparams(bindparam("processed_at", type_=processed.c.processed_at.type))


def _decode_until_malformed(
    records: Sequence[Record],
) -> tuple[list[Event[EventPayload]], MalformedEvent | None]:
    """The records' events, up to the first that is not a Leadflow CloudEvent, and why it
    is not."""
    events: list[Event[EventPayload]] = []
    for record in records:
        try:
            events.append(decode(record.headers, record.value))
        except MalformedEvent as error:
            return events, error
    return events, None


def _ce_id(record: Record) -> str | None:
    for key, value in record.headers:
        if key == "ce_id":
            return str(value.decode("utf-8", errors="replace"))
    return None
