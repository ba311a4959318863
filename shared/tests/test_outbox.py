"""The outbox inside a transaction: written at once, or buffered and written together; the
relay that publishes it, one instance of a service at a time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from shared.cloudevents import header
from shared.db import Database
from shared.kafka.producer import create_producer
from shared.outbox import Outbox, OutboxRelay
from shared.testing import factories
from shared.testing.kafka_tools import eventually, read_topic
from shared.testing.metrics import metric_value
from shared.testing.probe.models import TABLES
from shared.topics import TopicNames


def rows(session: Session) -> list[str]:
    outbox = TABLES.outbox
    return list(session.execute(select(outbox.c.event_id).order_by(outbox.c.id)).scalars())


def test_events_are_written_at_once_by_default(database: Database) -> None:
    outbox = Outbox(TABLES, source="/test")
    with database.transaction() as session:
        event = outbox.add(session, factories.lead_scored())
        assert rows(session) == [event.id]


def test_buffered_events_are_written_together_in_order_when_the_block_ends(
    database: Database,
) -> None:
    outbox = Outbox(TABLES, source="/test")
    with database.transaction() as session:
        with outbox.buffered(session):
            first = outbox.add(session, factories.lead_scored())
            second = outbox.add(session, factories.lead_routed())
            assert rows(session) == []  # not yet: one insert at the end
        assert rows(session) == [first.id, second.id]
    with database.read() as session:
        count = session.execute(select(func.count()).select_from(TABLES.outbox)).scalar_one()
    assert count == 2


def test_a_buffered_block_that_raises_writes_nothing(database: Database) -> None:
    outbox = Outbox(TABLES, source="/test")

    def emit_then_fail(session: Session) -> None:
        with outbox.buffered(session):
            outbox.add(session, factories.lead_scored())
            raise RuntimeError("handler failed")

    with database.transaction() as session:
        with pytest.raises(RuntimeError, match="handler failed"):
            emit_then_fail(session)
        kept = outbox.add(session, factories.lead_sla())  # unbuffered again after the block
        assert rows(session) == [kept.id]


@contextlib.asynccontextmanager
async def relaying(
    kafka_bootstrap_servers: str, *relays: OutboxRelay
) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer for ``relays`` to publish with; after the block it is stopped and
    the relays give up their leadership."""
    producer = create_producer(kafka_bootstrap_servers, client_id="test-relay")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
        for relay in relays:
            relay._release_leadership()


def end_the_relays_session(database: Database) -> None:
    """What a PostgreSQL restart or a cut connection does to the relay holding the lock:
    its session ends, and the advisory lock with it."""
    held = (
        " FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with database.engine.begin() as connection:
        ended = connection.execute(text(f"SELECT pg_terminate_backend(pid){held}")).all()
    assert len(ended) == 1
    # pg_terminate_backend only signals the backend; the lock goes when it has exited.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with database.engine.connect() as connection:
            if not connection.execute(text(f"SELECT count(*){held}")).scalar():
                return
        time.sleep(0.01)
    raise AssertionError("the relay's session did not end")


@pytest.mark.kafka
async def test_one_relay_of_a_service_publishes_and_another_takes_over_when_its_session_ends(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite is one process: its relay needs no lock")
    outbox = Outbox(TABLES, source="/test")
    first, second = (
        OutboxRelay(service="probe", db=database, tables=TABLES, names=topic_names)
        for _ in range(2)
    )

    def add(count: int) -> list[str]:
        with database.transaction() as session:
            return [outbox.add(session, factories.lead_ingested()).id for _ in range(count)]

    async with relaying(kafka_bootstrap_servers, first, second) as producer:
        sent = add(2)
        assert await first.publish_pending(producer) == 2
        sent += add(1)
        assert await second.publish_pending(producer) == 0  # the first holds the lock
        assert await first.publish_pending(producer) == 1

        end_the_relays_session(database)
        sent += add(1)
        assert await second.publish_pending(producer) == 1  # the lock was free: it leads now
        with pytest.raises(OperationalError):
            await first.publish_pending(producer)  # its session is gone: it gives up
        sent += add(1)
        assert await first.publish_pending(producer) == 0
        assert await second.publish_pending(producer) == 1

    records = await read_topic(
        kafka_bootstrap_servers, topic_names.physical("leads.ingested"), count=6, timeout=3.0
    )
    assert sorted(str(header(record.headers, "ce_id")) for record in records) == sorted(sent)


async def test_the_relay_marks_what_it_published_and_counts_it_by_topic(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    outbox = Outbox(TABLES, source="/test")
    relay = OutboxRelay(service="probe-counted", db=database, tables=TABLES, names=topic_names)
    with database.transaction() as session:
        for payload in (
            factories.lead_ingested(),
            factories.lead_scored(),
            factories.lead_ingested(),
        ):
            outbox.add(session, payload)

    def published(topic: str) -> float:
        return metric_value("leadflow_events_published_total", service="probe-counted", topic=topic)

    before = {topic: published(topic) for topic in ("leads.ingested", "leads.scored")}
    async with relaying(kafka_bootstrap_servers, relay) as producer:
        assert await relay.publish_pending(producer) == 3
        assert relay.pending_count() == 0  # all three marked, by their ids
        assert await relay.publish_pending(producer) == 0
    assert {topic: published(topic) - count for topic, count in before.items()} == {
        "leads.ingested": 2,
        "leads.scored": 1,
    }


async def test_the_relay_measures_each_event_from_its_outbox_row_to_the_brokers_ack(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    outbox = Outbox(TABLES, source="/test")
    relay = OutboxRelay(service="probe-delay", db=database, tables=TABLES, names=topic_names)
    with database.transaction() as session:
        outbox.add(session, factories.lead_ingested())
        outbox.add(session, factories.lead_scored())
        # As if the relay had been away for five seconds.
        session.execute(
            TABLES.outbox.update().values(created_at=datetime.now(UTC) - timedelta(seconds=5))
        )

    def delays() -> tuple[float, float]:
        return (
            metric_value("leadflow_outbox_delay_seconds_count", service="probe-delay"),
            metric_value("leadflow_outbox_delay_seconds_sum", service="probe-delay"),
        )

    count_before, sum_before = delays()
    async with relaying(kafka_bootstrap_servers, relay) as producer:
        assert await relay.publish_pending(producer) == 2
    count, total = delays()
    assert count == count_before + 2
    assert 10.0 <= total - sum_before < 60.0  # two events, five seconds and a little each


async def test_a_relay_woken_by_a_commit_lingers_and_publishes_what_is_committed_meanwhile_with_it(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    outbox = Outbox(TABLES, source="/test")
    relay = OutboxRelay(
        service="probe-linger",
        db=database,
        tables=TABLES,
        names=topic_names,
        poll_interval=60.0,
        linger=2.0,
    )

    def commit() -> str:
        with database.transaction() as session:
            event_id = outbox.add(session, factories.lead_ingested()).id
        relay.notify()
        return event_id

    def published_at() -> dict[str, datetime | None]:
        table = TABLES.outbox
        with database.read() as session:
            rows = session.execute(select(table.c.event_id, table.c.published_at))
            return {row.event_id: row.published_at for row in rows}

    waiting = commit()  # pending when the relay starts: published at once
    stopping = asyncio.Event()
    async with relaying(kafka_bootstrap_servers, relay) as producer:
        running = asyncio.create_task(relay.run(producer, stopping))
        await eventually(lambda: relay.pending_count() == 0, message="not published")
        first = commit()
        await asyncio.sleep(0.3)
        assert relay.pending_count() == 1  # woken, it lingers
        second = commit()
        await eventually(lambda: relay.pending_count() == 0, message="not published")
        stopping.set()
        await running
    at = published_at()
    assert at[first] == at[second]  # marked together: one cycle
    assert at[waiting] != at[first]


async def test_the_relay_reads_and_marks_outside_a_transaction_on_postgresql(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    """Each read and mark is one statement on the connection that holds the lock: in
    autocommit, so a cycle sends no BEGIN and COMMIT, and the connection never sits idle in
    a transaction between cycles (which would hold back vacuum)."""
    if not database.is_postgresql:
        pytest.skip("SQLite relays through pooled transactions")
    outbox = Outbox(TABLES, source="/test")
    relay = OutboxRelay(service="probe-autocommit", db=database, tables=TABLES, names=topic_names)
    with database.transaction() as session:
        outbox.add(session, factories.lead_ingested())
    async with relaying(kafka_bootstrap_servers, relay) as producer:
        assert await relay.publish_pending(producer) == 1
        leader = relay._leader_connection
        assert leader is not None
        assert leader.connection.dbapi_connection.autocommit  # type: ignore[union-attr]
        with database.engine.connect() as connection:
            states = connection.execute(
                text(
                    "SELECT state FROM pg_stat_activity WHERE pid IN (SELECT pid FROM pg_locks"
                    " WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database()))"
                )
            ).scalars()
            assert list(states) == ["idle"]
        assert relay.pending_count() == 0
