"""The event runtime on the real broker and both databases: round trip, dead letters,
duplicates, retries, the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import func, select
from sqlmodel import col

from shared import schema_files
from shared.cloudevents import Event, decode, header
from shared.contracts import LeadScoredV1
from shared.db import Database
from shared.observability.metrics import EVENTS_DEAD_LETTERED, EVENTS_DUPLICATE
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import eventually, produce, produce_raw, read_topic
from shared.testing.metrics import metric_value
from shared.testing.probe import service as probe
from shared.testing.probe.models import TABLES, Effect
from shared.testing.pytest_plugin import running_runtime, service_settings
from shared.topics import TopicNames

pytestmark = pytest.mark.kafka


def effects(database: Database) -> list[Effect]:
    with database.read() as session:
        return list(session.execute(select(Effect).order_by(col(Effect.id))).scalars())


def effect_count(database: Database, event_id: str) -> int:
    with database.read() as session:
        return int(
            session.execute(
                select(func.count()).select_from(Effect).where(col(Effect.event_id) == event_id)
            ).scalar_one()
        )


@pytest.fixture
async def runtime(
    service_definition: ServiceDefinition,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> AsyncIterator[ServiceRuntime]:
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
        handler_max_attempts=3,
    )
    runtime = ServiceRuntime(service_definition, settings)
    async with running_runtime(runtime):
        yield runtime


async def test_an_event_round_trips_through_outbox_broker_and_consumer(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    names = runtime.names
    payload = factories.lead_ingested(probe="emit")
    # As ingest would: the state change and its event in one transaction.
    with database.transaction() as session:
        event = runtime.outbox.add(session, payload)
    runtime.relay.notify()

    await eventually(lambda: effect_count(database, event.id) == 1, message="not consumed")

    # On the wire: CloudEvents binary mode, keyed by lead id, payload as its JSON Schema says.
    [record] = await read_topic(kafka_bootstrap_servers, names.physical("leads.ingested"), count=1)
    assert record.key == str(payload.lead_id).encode()
    assert header(record.headers, "ce_id") == event.id
    assert header(record.headers, "ce_source") == "/leadflow/probe"
    assert header(record.headers, "ce_subject") == str(payload.lead_id)
    assert decode(record.headers, record.value).data == payload
    jsonschema.validate(json.loads(record.value), schema_files.load("leadflow.lead.ingested.v1"))

    # The handler's own event went out through the outbox after its transaction committed.
    [scored] = await read_topic(kafka_bootstrap_servers, names.physical("leads.scored"), count=1)
    scored_event = decode(scored.headers, scored.value)
    assert isinstance(scored_event.data, LeadScoredV1)
    assert scored_event.data.lead_id == payload.lead_id
    jsonschema.validate(json.loads(scored.value), schema_files.load("leadflow.lead.scored.v1"))
    await eventually(lambda: runtime.relay.pending_count() == 0, message="outbox not drained")


async def test_the_consumer_measures_how_long_a_record_waited_and_each_step_of_its_batch(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    """Where a hop's latency goes: a record produced 3 s ago waited at least that long, and
    its batch's transaction and offset commit were each timed."""

    def waits() -> tuple[float, float]:
        labels = {"service": "probe", "topic": "leads.ingested"}
        return (
            metric_value("leadflow_consumer_wait_seconds_count", **labels),
            metric_value("leadflow_consumer_wait_seconds_sum", **labels),
        )

    def batches(step: str) -> float:
        return metric_value("leadflow_consumer_batch_seconds_count", service="probe", step=step)

    count_before, sum_before = waits()
    transactions, offset_commits = batches("transaction"), batches("offset_commit")
    event = Event(data=factories.lead_ingested(), source="/test")
    three_seconds_ago = round((datetime.now(UTC).timestamp() - 3) * 1000)
    await produce(
        kafka_bootstrap_servers,
        runtime.names.physical("leads.ingested"),
        [event],
        timestamp_ms=three_seconds_ago,
    )

    await eventually(lambda: effect_count(database, event.id) == 1, message="not consumed")
    await eventually(lambda: batches("offset_commit") > offset_commits, message="not timed")
    count, total = waits()
    assert count == count_before + 1
    assert 3.0 <= total - sum_before < 30.0  # in seconds, from the record's own timestamp
    assert batches("transaction") > transactions


async def test_batches_handled_while_an_offset_commit_is_in_flight_are_committed_together_after_it(
    runtime: ServiceRuntime,
    database: Database,
    kafka_bootstrap_servers: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The offset commit is a round trip the loop does not wait for; commits stay one at a
    time and in order, and the batches handled while one is in flight go in the next."""
    held = asyncio.Event()
    commits: list[dict[TopicPartition, int]] = []
    commit = AIOKafkaConsumer.commit

    async def held_commit(
        consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int] | None = None
    ) -> None:
        assert offsets is not None
        commits.append(offsets)
        await held.wait()
        await commit(consumer, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", held_commit)
    topic = runtime.names.physical("leads.ingested")
    lead_id = uuid.uuid4()  # one partition
    first, second, third = (
        Event(data=factories.lead_ingested(lead_id=lead_id), source="/test") for _ in range(3)
    )

    def transactions() -> float:
        return metric_value(
            "leadflow_consumer_batch_seconds_count", service="probe", step="transaction"
        )

    before = transactions()
    try:
        await produce(kafka_bootstrap_servers, topic, [first])
        await eventually(lambda: len(commits) == 1, message="first batch not committed")
        # Each a batch of its own, handled while the first commit is held.
        await produce(kafka_bootstrap_servers, topic, [second])
        await eventually(lambda: effect_count(database, second.id) == 1, message="loop waited")
        await produce(kafka_bootstrap_servers, topic, [third])
        await eventually(lambda: effect_count(database, third.id) == 1, message="loop waited")
        # Timed by the loop as it goes on to commit the batch: by then a commit not waiting
        # for the first would have been sent.
        await eventually(lambda: transactions() == before + 3)
        await asyncio.sleep(0.1)
        assert len(commits) == 1  # the next commit waits for the first's answer
    finally:
        held.set()  # the consumer waits for its commits before it stops
    await eventually(lambda: len(commits) == 2, message="the later batches not committed")
    [(partition, after_first)] = commits[0].items()
    assert commits[1] == {partition: after_first + 2}  # both later batches in one commit
    await asyncio.sleep(0.1)
    assert len(commits) == 2


async def test_a_failing_record_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    names = runtime.names
    lead_id = uuid.uuid4()  # one key: one partition, in this order
    before, poison, after = (
        Event(data=factories.lead_ingested(lead_id=lead_id, probe=note), source="/test")
        for note in ("before", "poison", "after")
    )
    dead_before = EVENTS_DEAD_LETTERED.labels("probe", "leads.ingested")._value.get()
    await produce(
        kafka_bootstrap_servers, names.physical("leads.ingested"), [before, poison, after]
    )

    await eventually(lambda: effect_count(database, after.id) == 1, message="partition stuck")
    assert [effect.event_id for effect in effects(database)] == [before.id, after.id]
    assert probe.attempts[poison.id] == 3  # handler_max_attempts

    [dead] = await read_topic(
        kafka_bootstrap_servers, names.physical("leads.ingested.dlq"), count=1
    )
    assert header(dead.headers, "ce_id") == poison.id
    assert header(dead.headers, "dlq_error") == "ValueError: the probe was told to fail"
    assert header(dead.headers, "dlq_original_topic") == names.physical("leads.ingested")
    original = await read_topic(kafka_bootstrap_servers, names.physical("leads.ingested"), count=3)
    poison_record = next(r for r in original if header(r.headers, "ce_id") == poison.id)
    assert header(dead.headers, "dlq_original_partition") == str(poison_record.partition)
    assert header(dead.headers, "dlq_original_offset") == str(poison_record.offset)
    assert header(dead.headers, "dlq_attempts") == "3"
    assert dead.value == poison_record.value
    assert EVENTS_DEAD_LETTERED.labels("probe", "leads.ingested")._value.get() == dead_before + 1

    processed = TABLES.processed_events
    with database.read() as session:
        outcome = session.execute(
            select(processed.c.outcome).where(processed.c.event_id == poison.id)
        ).scalar_one()
    assert outcome == "dead_lettered"


async def test_the_same_event_delivered_twice_has_one_effect(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    names = runtime.names
    event = Event(data=factories.lead_ingested(), source="/test")
    marker = Event(data=factories.lead_ingested(lead_id=event.data.lead_id), source="/test")
    duplicates_before = EVENTS_DUPLICATE.labels("probe", "leads.ingested")._value.get()
    await produce(kafka_bootstrap_servers, names.physical("leads.ingested"), [event])
    await eventually(lambda: effect_count(database, event.id) == 1)
    # Redelivered later (a relay re-sending after a crash), then something after it.
    await produce(kafka_bootstrap_servers, names.physical("leads.ingested"), [event, marker])
    await eventually(lambda: effect_count(database, marker.id) == 1)
    assert effect_count(database, event.id) == 1
    assert EVENTS_DUPLICATE.labels("probe", "leads.ingested")._value.get() == duplicates_before + 1


async def test_the_same_event_twice_in_one_batch_has_one_effect(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    event = Event(data=factories.lead_ingested(), source="/test")
    await produce(
        kafka_bootstrap_servers, runtime.names.physical("leads.ingested"), [event, event, event]
    )
    await eventually(lambda: probe.attempts[event.id] >= 1)
    marker = Event(data=factories.lead_ingested(lead_id=event.data.lead_id), source="/test")
    await produce(kafka_bootstrap_servers, runtime.names.physical("leads.ingested"), [marker])
    await eventually(lambda: effect_count(database, marker.id) == 1)
    assert effect_count(database, event.id) == 1


async def test_a_flaky_handler_is_retried_and_not_dead_lettered(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    event = Event(data=factories.lead_ingested(probe="flaky:2"), source="/test")
    await produce(kafka_bootstrap_servers, runtime.names.physical("leads.ingested"), [event])
    await eventually(lambda: effect_count(database, event.id) == 1)
    assert probe.attempts[event.id] == 3
    dead = await read_topic(
        kafka_bootstrap_servers, runtime.names.physical("leads.ingested.dlq"), count=1, timeout=1.0
    )
    assert dead == []


async def test_a_record_that_is_not_a_cloudevent_is_dead_lettered_at_once(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    names = runtime.names
    key = str(uuid.uuid4()).encode()
    await produce_raw(
        kafka_bootstrap_servers,
        names.physical("leads.ingested"),
        b"hello",
        key=key,
        headers=[("ce_type", b"leadflow.lead.ingested.v1")],
    )
    follower = Event(data=factories.lead_ingested(lead_id=uuid.UUID(key.decode())), source="/test")
    await produce(kafka_bootstrap_servers, names.physical("leads.ingested"), [follower])
    await eventually(lambda: effect_count(database, follower.id) == 1)
    [dead] = await read_topic(
        kafka_bootstrap_servers, names.physical("leads.ingested.dlq"), count=1
    )
    assert dead.value == b"hello"
    assert header(dead.headers, "dlq_error") == "MalformedEvent: header ce_specversion is missing"
    assert header(dead.headers, "dlq_attempts") == "1"


async def test_events_committed_while_kafka_was_out_of_reach_are_published_once(
    service_definition: ServiceDefinition,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> None:
    """A crash between the database commit and the send: the row waits in the outbox."""
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
    )
    runtime = ServiceRuntime(service_definition, settings)
    payloads = [factories.lead_scored(scored_at=datetime.now(UTC)) for _ in range(5)]
    with database.transaction() as session:
        for payload in payloads:
            runtime.outbox.add(session, payload)
    assert runtime.relay.pending_count() == 5  # committed, never sent: the process "died"

    async with running_runtime(runtime):
        await eventually(lambda: runtime.relay.pending_count() == 0)
    records = await read_topic(
        kafka_bootstrap_servers, topic_names.physical("leads.scored"), count=6, timeout=3.0
    )
    assert sorted(decode(r.headers, r.value).data.lead_id for r in records) == sorted(
        p.lead_id for p in payloads
    )


async def test_when_a_commit_fails_each_record_is_isolated_and_only_its_events_are_lost(
    runtime: ServiceRuntime, database: Database, kafka_bootstrap_servers: str
) -> None:
    """A constraint that breaks only at commit: the batch is re-run with a savepoint per
    record; the breaking record is dead-lettered with nothing it emitted, the others pass
    with their events."""
    names = runtime.names
    lead_id = uuid.uuid4()  # one partition, one batch, this order
    events = [
        Event(data=factories.lead_ingested(lead_id=lead_id, probe=script), source="/test")
        for script in ("emit,unique:k1", "emit,unique:k1", "emit")
    ]
    kept_first, clashing, kept_last = events
    await produce(kafka_bootstrap_servers, names.physical("leads.ingested"), events)

    await eventually(lambda: effect_count(database, kept_last.id) == 1)
    assert effect_count(database, kept_first.id) == 1
    assert effect_count(database, clashing.id) == 0
    [dead] = await read_topic(
        kafka_bootstrap_servers, names.physical("leads.ingested.dlq"), count=1
    )
    assert header(dead.headers, "ce_id") == clashing.id
    assert header(dead.headers, "dlq_error_type") == "IntegrityError"
    await eventually(lambda: runtime.relay.pending_count() == 0)
    scored = await read_topic(
        kafka_bootstrap_servers, names.physical("leads.scored"), count=3, timeout=3.0
    )
    assert len(scored) == 2  # one event each from the two records that passed


def test_the_relay_lingers_as_long_as_the_settings_say(
    service_definition: ServiceDefinition, database: Database
) -> None:
    settings = service_settings(service_definition, database=database, outbox_linger_ms=250)
    runtime = ServiceRuntime(service_definition, settings)
    try:
        assert runtime.relay.linger == 0.25
    finally:
        runtime.db.dispose()


async def test_a_consumer_told_to_wait_for_fuller_fetches_takes_records_that_trickle_in_together(
    service_definition: ServiceDefinition,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> None:
    """fetch.min.bytes and fetch.max.wait.ms reach the broker: records produced apart, while
    a fetch is held, come to the handler in one batch (with Kafka's defaults the first one
    comes alone, as soon as it is written)."""
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
        consumer_fetch_min_bytes=1 << 20,
        consumer_fetch_max_wait_ms=3_000,
    )
    runtime = ServiceRuntime(service_definition, settings)
    batches: list[list[str | None]] = []
    runtime.consumer_hooks.after_db_commit = lambda records: batches.append(
        [header(record.headers, "ce_id") for record in records]
    )
    topic = topic_names.physical("leads.ingested")
    lead_id = uuid.uuid4()  # one partition
    warm_up, *trickle = (
        Event(data=factories.lead_ingested(lead_id=lead_id), source="/test") for _ in range(3)
    )
    async with running_runtime(runtime):
        # Handled: the consumer is in its group and its next fetch is held at the broker.
        await produce(kafka_bootstrap_servers, topic, [warm_up])
        await eventually(lambda: effect_count(database, warm_up.id) == 1)
        await produce(kafka_bootstrap_servers, topic, trickle[:1])
        await asyncio.sleep(0.5)
        await produce(kafka_bootstrap_servers, topic, trickle[1:])
        await eventually(lambda: effect_count(database, trickle[-1].id) == 1, timeout=15)
    assert batches == [[warm_up.id], [event.id for event in trickle]]
