"""Rebuilding the read model: every topic replayed from its first offset into emptied tables.

The replay is a direct read (no consumer group, nothing committed to Kafka) of each
``leads.*`` topic up to the end offsets it found when it started, through the very handlers
the live consumer runs. It happens in one database transaction: readers see the old numbers
until the new ones are complete. Records the live consumer could not process (not a
Leadflow CloudEvent, or a handler that raised) are skipped here too; the live consumer sent
them to the dead-letter topic.

The live consumer may keep running meanwhile: facts are keyed, and a fact both write is
written once. Its committed offsets are left alone, so what arrives after the replay's end
offsets is still the live consumer's to handle.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlmodel import Session

from services.reporting import repository
from services.reporting.handlers import handlers
from services.reporting.models import TABLES
from shared.cloudevents import Event, MalformedEvent, decode
from shared.contracts import EventPayload
from shared.db import Database
from shared.kafka.consumer import HandlerContext, Record
from shared.observability.logs import get_logger
from shared.outbox import Outbox
from shared.topics import TopicNames

log = get_logger(__name__)

OUTBOX = Outbox(TABLES, source="/leadflow/reporting")


@dataclass
class RebuildReport:
    records: int = 0
    applied: int = 0
    skipped: int = 0


def apply_event(session: Session, event: Event[EventPayload], *, topic: str = "") -> bool:
    """Project one event through the live consumer's handler; False if it has none."""
    handler = handlers.get(type(event.data))
    if handler is None:
        return False
    handler(HandlerContext(session, event, OUTBOX, topic, 0, 0), event.data)
    return True


def _apply_records(
    session: Session, records: Sequence[Record], names: TopicNames, report: RebuildReport
) -> None:
    decoded: list[tuple[Event[EventPayload], str]] = []
    for record in records:
        report.records += 1
        try:
            event = decode(record.headers, record.value)
        except MalformedEvent as error:
            report.skipped += 1
            log.warning("rebuild skips a malformed record", topic=record.topic, error=str(error))
            continue
        decoded.append((event, names.logical(record.topic)))
    for _, run in itertools.groupby(decoded, key=lambda pair: _handled_by(pair[0])):
        _apply_run(session, list(run), report)


def _handled_by(event: Event[EventPayload]) -> object:
    """What a run of events has in common: their batch handler, else their type."""
    return handlers.get_batch(type(event.data)) or type(event.data)


def _apply_run(
    session: Session, run: list[tuple[Event[EventPayload], str]], report: RebuildReport
) -> None:
    """Consecutive events of one batch handler (or one type) through the live consumer's
    handler, in one savepoint; should it fail, one savepoint per event, so that a refused
    one is skipped alone."""
    batch_handler = handlers.get_batch(type(run[0][0].data))
    if batch_handler is not None and len(run) > 1:
        contexts = [HandlerContext(session, event, OUTBOX, topic, 0, 0) for event, topic in run]
        try:
            with session.begin_nested():
                batch_handler([(context, context.event.data) for context in contexts])
        except Exception:
            pass  # which one is at fault is found one by one below
        else:
            report.applied += len(run)
            return
    for event, topic in run:
        try:
            with session.begin_nested():
                applied = apply_event(session, event, topic=topic)
        except Exception as error:
            report.skipped += 1
            log.warning("rebuild skips a record its handler refused", error=repr(error))
            continue
        if applied:
            report.applied += 1
        else:
            report.skipped += 1


async def _assign_everything(
    consumer: AIOKafkaConsumer, topics: list[str], timeout: float
) -> dict[TopicPartition, int]:
    """Assign every partition of the topics from the beginning; answer their end offsets."""
    deadline = time.monotonic() + timeout
    assignment: list[TopicPartition] = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} does not exist on the cluster")
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        assignment.extend(TopicPartition(topic, partition) for partition in sorted(partitions))
    consumer.assign(assignment)
    await consumer.seek_to_beginning(*assignment)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(assignment)
    return ends


async def rebuild(
    *,
    db: Database,
    bootstrap_servers: str,
    names: TopicNames,
    chunk: int = 1000,
    timeout: float = 60.0,
) -> RebuildReport:
    """Empty the fact tables and replay every topic into them, in one transaction."""
    topics = [names.physical(topic) for topic in handlers.topics]
    report = RebuildReport()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="leadflow-reporting-rebuild",
    )
    await consumer.start()
    session = Session(db.engine, expire_on_commit=False)
    transaction = session.begin()
    try:
        ends = await _assign_everything(consumer, topics, timeout)
        await asyncio.to_thread(repository.clear_facts, session=session)
        remaining = {tp for tp, end in ends.items() if end > 0}
        log.info("rebuild started", topics=topics, records=sum(ends.values()))
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=chunk)
            records: list[Record] = []
            for tp, batch in batches.items():
                records.extend(record for record in batch if record.offset < ends[tp])
            if records:
                await asyncio.to_thread(_apply_records, session, records, names, report)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        await asyncio.to_thread(transaction.commit)
    except BaseException:
        await asyncio.to_thread(transaction.rollback)
        raise
    finally:
        await asyncio.to_thread(session.close)
        await consumer.stop()
    log.info("rebuild done", records=report.records, applied=report.applied, skipped=report.skipped)
    return report
