"""The floor under every service: one hop of the runtime on the real broker.

A producer sends CloudEvents to ``leads.ingested``; the probe service's consumer decodes
each, runs a handler that writes one row and emits one event (as every service's hop does),
records the event id, commits the database, then commits the offset; the relay publishes
the emitted events. Latency is from the send to the database commit of that record.

* flood: every record offered at once; the figure is sustained records/s.
* paced: records offered at a fixed rate; the figures are latency percentiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord

from shared.cloudevents import Event
from shared.db import Database
from shared.db.migrate import upgrade
from shared.kafka.admin import ensure_topics
from shared.kafka.consumer import ConsumerHooks
from shared.kafka.producer import create_producer
from shared.service import ServiceRuntime
from shared.settings import PlatformSettings
from shared.testing import factories
from shared.testing.probe.service import DEFINITION, ProbeSettings
from shared.topics import LEADS_INGESTED, TopicNames


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def roundtrip(
    *,
    bootstrap_servers: str,
    database_url: str,
    records: int,
    rate: float | None,
    partitions: int = 6,
) -> dict[str, Any]:
    database = Database(database_url)
    upgrade(DEFINITION.migrations_dir, database)
    database.dispose()
    names = TopicNames(f"bench{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap_servers, names, [LEADS_INGESTED], partitions=partitions)
    committed_at: dict[str, float] = {}
    all_committed = asyncio.Event()
    loop = asyncio.get_running_loop()

    def after_commit(batch: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        # Runs in the consumer's worker thread, right after the database commit.
        now = time.perf_counter()
        for record in batch:
            event_id = dict(record.headers)["ce_id"].decode()
            committed_at.setdefault(event_id, now)
        if len(committed_at) >= records:
            loop.call_soon_threadsafe(all_committed.set)

    settings = ProbeSettings(
        database_url=database_url,
        platform=PlatformSettings(
            kafka_bootstrap_servers=bootstrap_servers, topic_namespace=names.namespace
        ),
    )
    runtime = ServiceRuntime(
        DEFINITION, settings, consumer_hooks=ConsumerHooks(after_db_commit=after_commit)
    )
    events = [
        Event(data=factories.lead_ingested(probe="emit"), source="/bench") for _ in range(records)
    ]
    payload_bytes = statistics.mean(len(event.value()) for event in events[:100])
    sent_at: dict[str, float] = {}
    await runtime.start()
    producer = create_producer(bootstrap_servers, client_id="bench")
    await producer.start()
    try:
        await asyncio.wait_for(runtime.consumers[0].started.wait(), 60)
        await asyncio.sleep(1.0)  # let the group settle
        topic = names.physical(LEADS_INGESTED.name)
        started = time.perf_counter()
        pending = []
        for index, event in enumerate(events):
            if rate:
                due = started + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent_at[event.id] = time.perf_counter()
            pending.append(
                await producer.send(
                    topic, value=event.value(), key=event.key, headers=event.headers()
                )
            )
        await asyncio.gather(*pending)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_committed.wait(), 600)
    finally:
        await producer.stop()
        await runtime.stop()
    if len(committed_at) < records:
        raise RuntimeError(f"only {len(committed_at)} of {records} records were committed")
    latencies = [(committed_at[i] - sent_at[i]) * 1000 for i in sent_at]
    elapsed = max(committed_at.values()) - min(sent_at.values())
    return {
        "records": records,
        "offered_per_s": rate or "all at once",
        "payload_bytes": round(payload_bytes),
        "records_per_s": round(records / elapsed),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
    }
