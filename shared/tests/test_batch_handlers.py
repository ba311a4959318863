"""Batch handlers (``Handlers.on_batch``) in the consumer's transaction, on both databases:
runs of consecutive records, order with other handlers, duplicates, and a failing record
found by handling the batch again one record at a time. The records are handed to the
consumer in process (the broker's part is the same for every handler: test_runtime.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlmodel import col

from shared.cloudevents import Event
from shared.contracts import LeadFeedbackV1, LeadIngestedV1, LeadRoutedV1, LeadScoredV1
from shared.db import Database
from shared.kafka.consumer import EventConsumer, HandlerContext, Handlers
from shared.outbox import Outbox
from shared.testing import factories
from shared.testing.kafka_tools import consumed, in_process_consumer
from shared.testing.locks import wait_until_waiting_for_a_lock
from shared.testing.probe.models import TABLES, Effect

OUTBOX = Outbox(TABLES, source="/test")


def probe_consumer(database: Database, handlers: Handlers) -> EventConsumer:
    """A consumer of the probe's tables, handed records in process (no broker)."""
    return in_process_consumer(
        "probe", handlers=handlers, database=database, tables=TABLES, outbox=OUTBOX
    )


class Recorder:
    """A consumer whose ``leads.ingested`` handler takes batches, and ``leads.feedback``
    one record at a time; each leaves an effect row and remembers how it was called."""

    def __init__(self, database: Database, *, failing: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.failing = failing
        handlers = Handlers()

        @handlers.on_batch(LeadIngestedV1)
        def ingested(batch: Sequence[tuple[HandlerContext, LeadIngestedV1]]) -> None:
            self.calls.append([context.event.id for context, _ in batch])
            for context, _ in batch:
                if context.event.id == self.failing:
                    raise ValueError("cannot be processed")
            self._effects(batch[0][0], [(context.event.id, payload) for context, payload in batch])

        @handlers.on(LeadFeedbackV1)
        def feedback(context: HandlerContext, payload: LeadFeedbackV1) -> None:
            self.calls.append([context.event.id])
            self._effects(context, [(context.event.id, payload)])

        self.consumer = probe_consumer(database, handlers)

    @staticmethod
    def _effects(context: HandlerContext, done: list[tuple[str, Any]]) -> None:
        context.session.execute(
            insert(Effect),
            [
                {"event_id": event_id, "lead_id": payload.lead_id, "handled_at": datetime.now(UTC)}
                for event_id, payload in done
            ],
        )


def effects(database: Database) -> list[str]:
    with database.read() as session:
        return list(
            session.execute(select(col(Effect.event_id)).order_by(col(Effect.id))).scalars()
        )


def test_consecutive_records_of_a_batch_type_are_handled_together_in_order(
    database: Database,
) -> None:
    first, second = (Event(data=factories.lead_ingested(), source="/test") for _ in range(2))
    feedback = Event(data=factories.lead_feedback(), source="/test")
    third = Event(data=factories.lead_ingested(), source="/test")
    recorder = Recorder(database)

    outcome = recorder.consumer._apply_batch(
        consumed([first, second, first, feedback, third, second])
    )

    assert outcome.failure is None
    assert outcome.done == 6
    # The duplicates (same event id) are skipped; the feedback splits the run.
    assert recorder.calls == [[first.id, second.id], [feedback.id], [third.id]]
    assert effects(database) == [first.id, second.id, feedback.id, third.id]
    # Processed: a second delivery of the whole batch has no effect.
    recorder.consumer._apply_batch(consumed([first, second, feedback, third]))
    assert effects(database) == [first.id, second.id, feedback.id, third.id]


def test_one_batch_handler_of_several_types_gets_their_interleaved_records_together(
    database: Database,
) -> None:
    """A consumer of several topics sees a lead's ingested, scored and routed records one
    after the other: a handler registered for all of them gets the run whole, not a record
    at a time."""
    calls: list[list[str]] = []
    handlers = Handlers()

    def fan_out(batch: Sequence[tuple[HandlerContext, Any]]) -> None:
        calls.append([context.event.id for context, _ in batch])

    for payload_type in (LeadIngestedV1, LeadScoredV1, LeadRoutedV1):
        handlers.on_batch(payload_type)(fan_out)
    handlers.on(LeadFeedbackV1)(lambda context, payload: calls.append([context.event.id]))
    consumer = probe_consumer(database, handlers)
    first, second = (factories.lead_ingested() for _ in range(2))
    events = [
        Event(data=first, source="/test"),
        Event(data=factories.lead_scored(lead_id=first.lead_id), source="/test"),
        Event(data=second, source="/test"),
        Event(data=factories.lead_routed(lead_id=first.lead_id), source="/test"),
        Event(data=factories.lead_feedback(lead_id=first.lead_id), source="/test"),
        Event(data=factories.lead_scored(lead_id=second.lead_id), source="/test"),
    ]

    outcome = consumer._apply_batch(consumed(events))

    assert outcome.failure is None
    assert outcome.done == 6
    ids = [event.id for event in events]
    assert calls == [ids[:4], [ids[4]], [ids[5]]]


def test_a_record_failing_in_a_batch_is_found_one_record_at_a_time(database: Database) -> None:
    events = [Event(data=factories.lead_ingested(), source="/test") for _ in range(4)]
    recorder = Recorder(database, failing=events[2].id)

    outcome = recorder.consumer._apply_batch(consumed(events))

    # The run failed as a whole, then each record had its savepoint and a call of its own.
    ids = [event.id for event in events]
    assert recorder.calls == [ids, [ids[0]], [ids[1]], [ids[2]]]
    assert outcome.done == 2
    assert outcome.failure is not None
    assert isinstance(outcome.failure.error, ValueError)
    assert effects(database) == ids[:2]


def test_records_after_a_malformed_one_are_not_recorded_as_processed(
    database: Database,
) -> None:
    before, after = (Event(data=factories.lead_ingested(), source="/test") for _ in range(2))
    [malformed] = consumed([Event(data=factories.lead_ingested(), source="/test")])
    malformed = dataclasses.replace(malformed, value=b"{not json")
    records = consumed([before, after])
    records.insert(1, dataclasses.replace(malformed, offset=1))
    recorder = Recorder(database)

    outcome = recorder.consumer._apply_batch(records)

    assert outcome.done == 1
    assert outcome.failure is not None
    assert outcome.failure.malformed
    assert effects(database) == [before.id]
    # Once the malformed record is dead-lettered, the partition goes on from the next one,
    # which was never handled and so is not taken for a duplicate.
    assert recorder.consumer._apply_batch(records[2:]).failure is None
    assert effects(database) == [before.id, after.id]


def test_two_replicas_handed_the_same_event_at_once_handle_it_once(database: Database) -> None:
    """A rebalance can hand a partition to a new owner while the old one still commits its
    last batch: the second transaction waits for the first one's record of the event, then
    skips the event as processed."""
    if not database.is_postgresql:
        pytest.skip("SQLite runs one writer at a time")
    event = Event(data=factories.lead_ingested(), source="/test")
    old_owner, new_owner = Recorder(database), Recorder(database)
    new_owner_applies: list[Future[Any]] = []

    with ThreadPoolExecutor(1) as racer:

        def start_the_new_owner_and_wait_until_it_blocks(records: Sequence[Any]) -> None:
            new_owner_applies.append(
                racer.submit(new_owner.consumer._apply_batch, consumed([event]))
            )
            wait_until_waiting_for_a_lock(database, new_owner_applies[0])

        old_owner.consumer.hooks.before_db_commit = start_the_new_owner_and_wait_until_it_blocks
        old = old_owner.consumer._apply_batch(consumed([event]))
        new = new_owner_applies[0].result(timeout=30)

    assert old.failure is None
    assert new.failure is None
    assert new.done == 1
    assert effects(database) == [event.id]
    assert old_owner.calls == [[event.id]]
    assert new_owner.calls == []
