"""Looking at a real broker from a test: produce, read back, committed offsets, waiting."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.cloudevents import Event, Headers
from shared.contracts import EventPayload
from shared.db import Database, RuntimeTables
from shared.kafka.consumer import EventConsumer, Handlers
from shared.kafka.producer import create_producer
from shared.outbox import Outbox
from shared.topics import topic_for


async def produce(
    bootstrap_servers: str,
    topic: str,
    events: Sequence[Event[EventPayload]],
    *,
    timestamp_ms: int | None = None,
) -> None:
    """Send CloudEvents straight to a topic (as another service's relay would), stamped now
    or at ``timestamp_ms`` (milliseconds since the epoch)."""
    producer = create_producer(bootstrap_servers, client_id="test-producer")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                topic,
                value=event.value(),
                key=event.key,
                headers=event.headers(),
                timestamp_ms=timestamp_ms,
            )
    finally:
        await producer.stop()


async def produce_raw(
    bootstrap_servers: str,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None = None,
    headers: Headers | None = None,
) -> None:
    producer = create_producer(bootstrap_servers, client_id="test-producer")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def assign_whole_topic(
    consumer: AIOKafkaConsumer, topic: str, *, timeout: float = 30.0
) -> list[TopicPartition]:
    """Assign every partition of ``topic`` to a started consumer without a group."""
    partitions = consumer.partitions_for_topic(topic)
    deadline = time.monotonic() + timeout
    while not partitions and time.monotonic() < deadline:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise AssertionError(f"topic {topic} does not exist")
    assignment = [TopicPartition(topic, partition) for partition in sorted(partitions)]
    consumer.assign(assignment)
    return assignment


async def read_topic(
    bootstrap_servers: str, topic: str, *, count: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic from the start, until ``count`` have come or time is up."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        assignment = await assign_whole_topic(consumer, topic, timeout=timeout)
        await consumer.seek_to_beginning(*assignment)
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def committed_offsets(bootstrap_servers: str, group_id: str) -> dict[int, int]:
    """Partition -> committed offset of a consumer group (partitions it never committed: absent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def eventually(
    check: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition not met",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``message`` at the timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{message} after {timeout}s (last: {last!r})")


@dataclass
class ConsumedRecord:
    """A record as the consumer sees it (aiokafka's ConsumerRecord, the parts it uses)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int = 0  # milliseconds since the epoch


def in_process_consumer(
    service: str, *, handlers: Handlers, database: Database, tables: RuntimeTables, outbox: Outbox
) -> EventConsumer:
    """``service``'s consumer with no broker behind it: records are handed to its
    ``_apply_batch`` in process (see :func:`consumed`)."""
    return EventConsumer(
        name=service,
        service=service,
        handlers=handlers,
        db=database,
        tables=tables,
        outbox=outbox,
        bootstrap_servers="unused",
    )


def consumed(events: Sequence[Event[Any]], *, partition: int = 0) -> list[ConsumedRecord]:
    """``events`` as the records of one partition, offsets from 0, each on its payload's
    (logical) topic: to hand to ``EventConsumer._apply_batch`` in process, without a broker."""
    return [
        ConsumedRecord(
            topic_for(type(event.data)).name,
            partition,
            offset,
            event.key,
            event.value(),
            list(event.headers()),
            int(event.time.timestamp() * 1000),
        )
        for offset, event in enumerate(events)
    ]
