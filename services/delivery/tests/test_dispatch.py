"""The webhook dispatcher against a real receiver on 127.0.0.1, on both databases, with the
clock in the test's hand: signatures, order per lead, retries over the 24-hour window, the
delivery log, the circuit breaker, 410 Gone, replays, and two dispatchers on one database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from services.delivery import repository
from services.delivery.dispatcher import dispatch_webhooks
from services.delivery.models import Delivery
from services.delivery.tests.conftest import (
    Answer,
    FakeClock,
    Received,
    Receiver,
    consume,
    running,
    verify_as_subscriber,
)
from shared.service import ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import eventually


def subscribe(
    runtime: ServiceRuntime,
    url: str,
    event_types: tuple[str, ...] = ("leads.scored", "leads.routed"),
    **filters: list[str],
) -> tuple[uuid.UUID, str]:
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    with runtime.db.transaction() as session:
        subscription = repository.create_subscription(
            session,
            url=url,
            event_types=event_types,
            grades=filters.get("grades", []),
            campaigns=filters.get("campaigns", []),
            description=None,
            secret=secret,
            now=runtime.state["clock"].now(),
        )
    return subscription.id, secret


def deliveries(runtime: ServiceRuntime, subscription_id: uuid.UUID) -> list[Delivery]:
    with runtime.db.read() as session:
        return repository.list_deliveries(session, subscription_id=subscription_id)


def lead_of(request: Received) -> str:
    return str(request.json()["subject"])


async def settle_idle(runtime: ServiceRuntime) -> None:
    """Give the dispatcher (polling every 20 ms) many chances to act."""
    await asyncio.sleep(0.3)


async def test_signed_in_order_per_lead_and_retried_on_schedule(
    runtime: ServiceRuntime, receiver: Receiver, clock: FakeClock
) -> None:
    subscription_id, secret = subscribe(runtime, receiver.url + "/hook")
    slow, quick = uuid.uuid4(), uuid.uuid4()
    scored = consume(runtime, factories.lead_scored(lead_id=slow, grade="A"))
    routed = consume(runtime, factories.lead_routed(lead_id=slow, grade="A"))
    consume(runtime, factories.lead_scored(lead_id=quick, grade="B"))
    consume(runtime, factories.lead_sla(lead_id=slow))  # not subscribed to

    failures = [Answer(503, {"retry-after": "120"}), Answer(500, body=b"boom")]

    def fail_the_slow_lead_twice(request: Received) -> Answer | None:
        if lead_of(request) == str(slow) and failures:
            return failures.pop(0)
        return None

    receiver.rule = fail_the_slow_lead_twice
    async with running(runtime, dispatch_webhooks):
        await eventually(lambda: len(receiver.requests) == 2, timeout=10)
        await settle_idle(runtime)
        # The quick lead went through; the slow lead's later event waits behind its first.
        assert sorted(lead_of(r) for r in receiver.requests) == sorted([str(slow), str(quick)])
        first = deliveries(runtime, subscription_id)[0]
        assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 503)
        assert first.next_attempt_at == clock.now() + timedelta(seconds=120)  # Retry-After

        clock.advance(timedelta(seconds=121))
        await eventually(lambda: len(receiver.requests) == 3, timeout=10)
        await settle_idle(runtime)
        assert len(receiver.requests) == 3
        first = deliveries(runtime, subscription_id)[0]
        assert first.next_attempt_at == clock.now() + timedelta(minutes=5)

        clock.advance(timedelta(minutes=5))
        await eventually(lambda: len(receiver.requests) == 5, timeout=10)

    slow_requests = [r for r in receiver.requests if lead_of(r) == str(slow)]
    assert [r.json()["id"] for r in slow_requests] == [scored.id] * 3 + [routed.id]
    # webhook-id is stable across the retries of one message, and differs between messages.
    assert len({r.headers["webhook-id"] for r in slow_requests[:3]}) == 1
    assert slow_requests[3].headers["webhook-id"] != slow_requests[0].headers["webhook-id"]
    last = slow_requests[-1]
    envelope = verify_as_subscriber(secret, last, now=clock.now())
    assert envelope["specversion"] == "1.0"
    assert envelope["type"] == "leadflow.lead.routed.v1"
    assert envelope["subject"] == str(slow)
    assert envelope["source"] == "/leadflow/test"
    assert envelope["datacontenttype"] == "application/json"
    assert envelope["data"]["assignment_id"] == str(routed.data.assignment_id)  # type: ignore[attr-defined]
    assert last.headers["content-type"].startswith("application/cloudevents+json")
    assert last.method == "POST"

    with runtime.db.read() as session:
        rows = repository.list_deliveries(session, subscription_id=subscription_id)
        assert [d.status for d in rows] == ["delivered"] * 3
        log = repository.delivery_attempts(session, rows[0].id or 0)
    assert [(a.status_code, a.outcome) for a in log] == [
        (503, "retry"),
        (500, "retry"),
        (200, "delivered"),
    ]
    assert log[1].response_excerpt == "boom"
    assert log[0].error == "HTTP 503"


async def test_a_subscriber_verifies_a_fresh_delivery_with_the_library(
    runtime: ServiceRuntime, receiver: Receiver
) -> None:
    """With the clock at the real time, the library's full check passes (timestamp too)."""
    _, secret = subscribe(runtime, receiver.url + "/hook", ("leads.ingested",))
    event = consume(runtime, factories.lead_ingested())
    async with running(runtime, dispatch_webhooks):
        await eventually(lambda: receiver.requests, timeout=10)
    assert verify_as_subscriber(secret, receiver.requests[0])["id"] == event.id


async def test_the_window_runs_out_and_then_the_next_message_goes(
    runtime: ServiceRuntime, receiver: Receiver, clock: FakeClock
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"breaker_threshold": 100})
    subscription_id, _ = subscribe(runtime, receiver.url + "/hook")
    lead = uuid.uuid4()
    consume(runtime, factories.lead_scored(lead_id=lead))
    consume(runtime, factories.lead_routed(lead_id=lead))
    receiver.rule = lambda r: Answer(500) if r.json()["type"].endswith("scored.v1") else None
    start = clock.now()
    async with running(runtime, dispatch_webhooks):
        for attempts in range(1, 9):

            def attempted(n: int = attempts) -> bool:
                return (
                    len(receiver.requests) >= n
                    and deliveries(runtime, subscription_id)[0].attempts == n
                )

            await eventually(attempted, timeout=10)
            head = deliveries(runtime, subscription_id)[0]
            if head.next_attempt_at is not None:
                clock.advance(head.next_attempt_at - clock.now())
        await eventually(lambda: len(receiver.requests) == 9, timeout=10)
    first, second = deliveries(runtime, subscription_id)
    assert (first.status, first.attempts) == ("failed", 8)
    assert first.settled_at == start + timedelta(hours=24)
    assert second.status == "delivered"
    assert receiver.requests[-1].json()["type"] == "leadflow.lead.routed.v1"


async def test_a_failing_receiver_is_paused_and_resuming_drains_it(
    runtime: ServiceRuntime, receiver: Receiver, clock: FakeClock
) -> None:
    subscription_id, _ = subscribe(runtime, receiver.url + "/down")
    receiver.defaults["/down"] = Answer(500)
    leads = [uuid.uuid4() for _ in range(4)]
    for lead in leads:
        consume(runtime, factories.lead_scored(lead_id=lead))
    async with running(runtime, dispatch_webhooks):

        def paused() -> bool:
            with runtime.db.read() as session:
                subscription = repository.get_subscription(session, subscription_id)
                return subscription is not None and subscription.status == "paused"

        await eventually(paused, timeout=10)
        assert len(receiver.requests) == 4  # threshold 4: one failure each
        # Paused: time passes, new events queue, and nothing is sent.
        clock.advance(timedelta(hours=3))
        consume(runtime, factories.lead_routed(lead_id=leads[0]))
        await settle_idle(runtime)
        assert len(receiver.requests) == 4
        with runtime.db.read() as session:
            subscription = repository.get_subscription(session, subscription_id)
            assert subscription is not None
            assert subscription.paused_reason == "circuit open: 4 consecutive failures"

        receiver.defaults["/down"] = Answer(204)
        with runtime.db.transaction() as session:
            subscription = repository.get_subscription(session, subscription_id, lock=True)
            assert subscription is not None
            repository.resume(session, subscription, now=clock.now())
        await eventually(
            lambda: all(d.status == "delivered" for d in deliveries(runtime, subscription_id)),
            timeout=10,
        )
    assert len(receiver.requests) == 4 + 5
    first_lead = [r.json()["type"] for r in receiver.requests[4:] if lead_of(r) == str(leads[0])]
    assert first_lead == ["leadflow.lead.scored.v1", "leadflow.lead.routed.v1"]


async def test_gone_disables_the_subscription(runtime: ServiceRuntime, receiver: Receiver) -> None:
    subscription_id, _ = subscribe(runtime, receiver.url + "/gone")
    receiver.defaults["/gone"] = Answer(410)
    consume(runtime, factories.lead_scored())
    async with running(runtime, dispatch_webhooks):
        await eventually(lambda: receiver.requests, timeout=10)
        await settle_idle(runtime)
    with runtime.db.read() as session:
        subscription = repository.get_subscription(session, subscription_id)
        assert subscription is not None
        assert (subscription.status, subscription.client_errors) == ("disabled", 1)
    consume(runtime, factories.lead_scored())  # no longer queued
    assert len(deliveries(runtime, subscription_id)) == 1
    assert len(receiver.requests) == 1


async def test_a_replay_sends_the_same_message_again(
    runtime: ServiceRuntime, receiver: Receiver
) -> None:
    subscription_id, _ = subscribe(runtime, receiver.url + "/hook")
    consume(runtime, factories.lead_scored())
    async with running(runtime, dispatch_webhooks):
        await eventually(lambda: receiver.requests, timeout=10)
        await eventually(lambda: deliveries(runtime, subscription_id)[0].status == "delivered")
        with runtime.db.transaction() as session:
            [delivery] = repository.list_deliveries(session, subscription_id=subscription_id)
            repository.replay_delivery(session, delivery)
        await eventually(lambda: len(receiver.requests) == 2, timeout=10)
    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert first.body == again.body


@pytest.mark.parametrize("instances", [2])
async def test_two_dispatchers_share_the_work_in_order_and_once(
    runtime: ServiceRuntime, receiver: Receiver, clock: FakeClock, instances: int
) -> None:
    subscription_id, _ = subscribe(runtime, receiver.url + "/hook", ("leads.sla",))
    leads = [uuid.uuid4() for _ in range(6)]
    statuses = ("warning", "breached", "reassigned")
    for status in statuses:
        for lead in leads:
            consume(runtime, factories.lead_sla(lead_id=lead, status=status))
    other = ServiceRuntime(runtime.definition, runtime.settings)
    other.state.update(runtime.state)
    try:
        async with running(runtime, dispatch_webhooks), running(other, dispatch_webhooks):
            await eventually(lambda: len(receiver.requests) >= 18, timeout=20)
            await settle_idle(runtime)
    finally:
        other.db.dispose()
    assert len(receiver.requests) == 18
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 18
    for lead in leads:
        seen = [r.json()["data"]["status"] for r in receiver.requests if lead_of(r) == str(lead)]
        assert tuple(seen) == statuses
    assert {d.status for d in deliveries(runtime, subscription_id)} == {"delivered"}
