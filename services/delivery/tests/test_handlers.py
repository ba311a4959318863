"""The consumer's batch handler: consecutive records of a type applied together give what
one by one gives (deliveries queued by each record's filters, lead views, erased leads
left alone), on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from services.delivery import repository
from services.delivery.handlers import handlers
from services.delivery.tests.conftest import consume
from services.delivery.tests.test_dispatch import deliveries, subscribe
from shared.cloudevents import Event
from shared.contracts import EventPayload
from shared.kafka.consumer import HandlerContext
from shared.service import ServiceRuntime
from shared.testing import factories
from shared.topics import topic_for


def consume_together(runtime: ServiceRuntime, payloads: Sequence[EventPayload]) -> None:
    """The payloads (of one type) handed to the batch handler in one transaction, as the
    consumer hands a run of records."""
    batch_handler = handlers.get_batch(type(payloads[0]))
    assert batch_handler is not None
    with runtime.db.transaction() as session:
        batch_handler(
            [
                (
                    HandlerContext(
                        session,
                        Event(data=payload, source="/leadflow/test"),
                        runtime.outbox,
                        topic_for(type(payload)).name,
                        0,
                        offset,
                    ),
                    payload,
                )
                for offset, payload in enumerate(payloads)
            ]
        )


def consume_one_by_one(runtime: ServiceRuntime, payloads: Sequence[EventPayload]) -> None:
    for payload in payloads:
        consume(runtime, payload)


def run_story(
    runtime: ServiceRuntime, apply: Callable[[ServiceRuntime, Sequence[EventPayload]], None]
) -> dict[str, Any]:
    """Three leads, one of them erased; a lead graded B then A in the same run of records;
    two subscriptions, one for A leads only. Answers what came of it."""
    hot, _ = subscribe(runtime, "https://hot.example.test/in", ("leads.scored",), grades=["A"])
    every, _ = subscribe(runtime, "https://all.example.test/in", ("leads.scored",))
    first, second, erased = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    consume(runtime, factories.lead_erased(lead_id=erased))
    names = {first: "first", second: "second", erased: "erased"}
    apply(
        runtime,
        [
            factories.lead_scored(lead_id=first, grade="B"),
            factories.lead_scored(lead_id=second, grade="A"),
            factories.lead_scored(lead_id=erased, grade="A"),
            factories.lead_scored(lead_id=first, grade="A"),
        ],
    )
    with runtime.db.read() as session:
        views = repository.lead_views(session, list(names))
    return {
        "hot": [names[each.lead_id] for each in deliveries(runtime, hot)],
        "every": [names[each.lead_id] for each in deliveries(runtime, every)],
        "grades": {names[lead]: view.grade for lead, view in views.items()},
    }


def test_a_run_of_records_together_gives_what_one_by_one_gives(runtime: ServiceRuntime) -> None:
    together = run_story(runtime, consume_together)
    one_by_one = run_story(runtime, consume_one_by_one)
    assert together == one_by_one
    # Each record judged on the lead as it was after that record; the erased lead untouched.
    assert sorted(together["hot"]) == ["first", "second"]
    assert sorted(together["every"]) == ["first", "first", "second"]
    assert together["grades"] == {"first": "A", "second": "A"}


def test_every_public_event_type_has_a_batch_handler() -> None:
    for payload in (
        factories.lead_ingested(),
        factories.lead_scored(),
        factories.lead_routed(),
        factories.lead_sla(),
        factories.lead_feedback(),
    ):
        assert handlers.get_batch(type(payload)) is not None, type(payload).__name__
