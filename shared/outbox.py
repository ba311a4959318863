"""The transactional outbox: events are rows first, Kafka records after the commit.

Whoever changes state (a request, a consumer's handler) adds the events that change causes
to the outbox in the same transaction. The relay publishes pending rows in id order and marks
them published once the broker acknowledged them. A crash between the commit and the send
loses nothing (the row is still pending); a crash between the send and the mark sends the
event again with the same id, and consumers drop the second copy.

On PostgreSQL several instances of a service may run: only the one holding the advisory lock
relays, so one lead's events keep their order. SQLite is one process by nature.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Connection, bindparam, func, select, text
from sqlmodel import Session

from shared.cloudevents import Event
from shared.contracts import EventPayload
from shared.db import Database, RuntimeTables
from shared.db.bulk import insert_rows
from shared.db.clauses import among_parameter
from shared.observability.logs import get_logger
from shared.observability.metrics import EVENTS_PUBLISHED, OUTBOX_DELAY_SECONDS, OUTBOX_PENDING
from shared.stopping import sleep_or_stop, wake_or_stop
from shared.topics import TopicNames, topic_for

log = get_logger(__name__)


@dataclass(frozen=True)
class Outbox:
    """Adds events to the outbox table inside the caller's transaction."""

    tables: RuntimeTables
    source: str

    def add(
        self,
        session: Session,
        payload: EventPayload,
        *,
        time: datetime | None = None,
        event_id: str | None = None,
    ) -> Event[EventPayload]:
        kwargs: dict[str, Any] = {"data": payload, "source": self.source}
        if time is not None:
            kwargs["time"] = time
        if event_id is not None:
            kwargs["id"] = event_id
        event = Event(**kwargs)
        self.add_event(session, event)
        return event

    def add_event(self, session: Session, event: Event[EventPayload]) -> None:
        row = {
            "event_id": event.id,
            "topic": topic_for(type(event.data)).name,
            "key": event.subject,
            "headers": event.headers_json(),
            "payload": event.value().decode(),
            "created_at": datetime.now(UTC),
        }
        buffer: list[dict[str, Any]] | None = session.info.get(_BUFFER)
        if buffer is not None:
            buffer.append(row)
        else:
            session.execute(self.tables.outbox.insert().values(**row))

    @contextmanager
    def buffered(self, session: Session) -> Iterator[None]:
        """Collect the rows added inside the block and write them in one go when it ends
        (:func:`~shared.db.bulk.insert_rows`); nothing is written if it raises. For a whole
        transaction only: inside a savepoint that may roll back alone, write rows at once
        instead."""
        session.info[_BUFFER] = []
        try:
            yield
            rows = session.info[_BUFFER]
            insert_rows(session, self.tables.outbox, rows)
        finally:
            session.info.pop(_BUFFER, None)


_BUFFER = "leadflow.outbox.buffer"


def buffered_keys(session: Session) -> set[str]:
    """The keys (lead ids) of the rows added in this session's buffered block so far, not yet
    written: rows that will be waiting in the outbox once the block ends."""
    buffer: list[dict[str, Any]] = session.info.get(_BUFFER) or []
    return {str(row["key"]) for row in buffer}


def _advisory_key(service: str) -> int:
    # A stable signed 32-bit key per service for pg_try_advisory_lock.
    return zlib.crc32(f"leadflow-outbox-{service}".encode()) - 2**31


class OutboxRelay:
    """Publishes pending outbox rows; wakes at once when told a commit added some."""

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        tables: RuntimeTables,
        names: TopicNames,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        linger: float = 0.0,
        retention: timedelta = timedelta(hours=72),
    ) -> None:
        self.service = service
        self.db = db
        self.tables = tables
        self.names = names
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.linger = linger
        self.retention = retention
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._leader_connection: Connection | None = None
        self._last_purge = datetime.min.replace(tzinfo=UTC)
        outbox = tables.outbox
        # The relay's two statements, built once: they are the same every cycle, and
        # building them anew cost about half of a cycle's client CPU.
        self._pending_query = (
            select(
                outbox.c.id,
                outbox.c.topic,
                outbox.c.key,
                outbox.c.headers,
                outbox.c.payload,
                outbox.c.created_at,
            )
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(batch_size)
        )
        self._mark_statement = (
            outbox.update()
            .where(among_parameter(db.engine.dialect.name, outbox.c.id, "ids"))
            .values(published_at=bindparam("published_at", type_=outbox.c.published_at.type))
        )

    def notify(self) -> None:
        """Thread-safe: a transaction that added outbox rows has committed."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed under us at shutdown
                loop.call_soon_threadsafe(self._wake.set)

    async def run(self, producer: AIOKafkaProducer, stopping: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        backoff = 0.2
        try:
            while True:
                # Cleared before the cycle, so a commit that lands during it is not missed.
                self._wake.clear()
                try:
                    while await self.publish_pending(producer) >= self.batch_size:
                        pass
                    backoff = 0.2
                except Exception as error:
                    if stopping.is_set():
                        log.error("outbox relay stopped with events pending", error=repr(error))
                        return
                    log.warning("outbox relay cycle failed", error=repr(error), retry_in=backoff)
                    await sleep_or_stop(stopping, backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                if stopping.is_set():
                    return
                await wake_or_stop(self._wake, stopping, self.poll_interval)
                if self._wake.is_set() and self.linger > 0:
                    # Woken by a commit: those of the next moments go out with it, in one
                    # fetch, produce request and mark rather than one each.
                    await sleep_or_stop(stopping, self.linger)
        finally:
            await asyncio.to_thread(self._release_leadership)

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """One cycle: publish up to a batch of pending rows; answer how many were published."""
        rows = await asyncio.to_thread(self._fetch_pending)
        if not rows:
            OUTBOX_PENDING.labels(self.service).set(0)
            await asyncio.to_thread(self._purge_if_due)
            return 0
        futures = []
        for row in rows:
            headers = [(k, v.encode()) for k, v in json.loads(row.headers)]
            futures.append(
                await producer.send(
                    self.names.physical(row.topic),
                    value=row.payload.encode(),
                    key=row.key.encode(),
                    headers=headers,
                )
            )
        await asyncio.gather(*futures)
        acknowledged = datetime.now(UTC)
        delay = OUTBOX_DELAY_SECONDS.labels(self.service)
        for row in rows:
            delay.observe(max(0.0, (acknowledged - row.created_at).total_seconds()))
        await asyncio.to_thread(self._mark_published, [row.id for row in rows])
        for topic, count in Counter(row.topic for row in rows).items():
            EVENTS_PUBLISHED.labels(self.service, topic).inc(count)
        if len(rows) < self.batch_size:
            OUTBOX_PENDING.labels(self.service).set(0)
        return len(rows)

    # ------------------------------------------------------------- database side (threads)

    def _leader(self) -> Connection | None:
        """The connection holding the relay's advisory lock, taken now if it is free; None
        while another instance holds it (PostgreSQL only)."""
        if self._leader_connection is None:
            # Autocommit: the lock is the session's, and each read or mark is one statement,
            # so a transaction around it would only add a BEGIN and a COMMIT, each a round
            # trip, to every cycle.
            connection = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            acquired = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _advisory_key(self.service)}
            ).scalar()
            if not acquired:
                connection.close()
                return None
            self._leader_connection = connection
        return self._leader_connection

    def _release_leadership(self) -> None:
        connection, self._leader_connection = self._leader_connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()  # closing the session releases the advisory lock

    @contextmanager
    def _relaying(self, *, writing: bool) -> Iterator[Connection | None]:
        """A connection for reading or marking the outbox, None if this instance does not
        relay. On PostgreSQL it is the one that holds the lock, in autocommit: a statement that
        fails there may mean that session is gone, and its lock with it, so leadership is
        given up and taken afresh by the next cycle (a probe before each cycle would cost a
        round trip)."""
        if not self.db.is_postgresql:
            # SQLite: one process relays; reading never waits behind a writer.
            with (self.db.engine if writing else self.db.reader).begin() as pooled:
                yield pooled
            return
        connection = self._leader()
        if connection is None:
            yield None
            return
        try:
            yield connection
        except BaseException:
            self._release_leadership()
            raise

    def _fetch_pending(self) -> list[Any]:
        with self._relaying(writing=False) as connection:
            if connection is None:
                return []
            return list(connection.execute(self._pending_query))

    def _mark_published(self, ids: list[int]) -> None:
        with self._relaying(writing=True) as connection:
            # Only the leader fetched these rows; a lost lock leaves them pending (sent
            # again by the next leader, dropped as duplicates by consumers).
            if connection is not None:
                connection.execute(
                    self._mark_statement, {"ids": ids, "published_at": datetime.now(UTC)}
                )

    def _purge_if_due(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_purge < timedelta(minutes=10):
            return
        self._last_purge = now
        outbox = self.tables.outbox
        with self.db.engine.begin() as connection:
            connection.execute(outbox.delete().where(outbox.c.published_at < now - self.retention))

    def pending_count(self) -> int:
        outbox = self.tables.outbox
        with self.db.reader.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
                ).scalar_one()
            )
