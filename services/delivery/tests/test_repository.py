"""The claim query against the ordering rule it implements, and SKIP LOCKED on PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlmodel import col, select

from services.delivery import repository
from services.delivery.domain.ordering import Unsettled, dispatchable
from services.delivery.models import Delivery
from services.delivery.tests.conftest import FakeClock
from shared.db import Database

LEASE = timedelta(minutes=2)


def subscription(database: Database, clock: FakeClock, status: str = "active") -> uuid.UUID:
    with database.transaction() as session:
        row = repository.create_subscription(
            session,
            url="http://127.0.0.1:9/hook",
            event_types=["leads.sla"],
            grades=[],
            campaigns=[],
            description=None,
            secret="whsec_" + "A" * 32,
            now=clock.now(),
        )
        row.status = status
        session.add(row)
    return row.id


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_claim_query_follows_the_ordering_rule(
    database: Database, clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    now = clock.now()
    subscriptions = [
        subscription(database, clock),
        subscription(database, clock),
        subscription(database, clock, "paused"),
    ]
    leads = [uuid.uuid4() for _ in range(8)]
    with database.transaction() as session:
        for index in range(80):
            delivery = repository.add_delivery(
                session,
                subscription_id=rng.choice(subscriptions),
                lead_id=rng.choice(leads),
                event_id=f"e{index}",
                event_type="leadflow.lead.sla.v1",
                body="{}",
                now=now,
            )
            delivery.status = rng.choice(["pending", "pending", "pending", "delivered", "failed"])
            delivery.next_attempt_at = rng.choice(
                [None, now - timedelta(seconds=1), now, now + timedelta(seconds=1)]
            )
            delivery.leased_until = rng.choice([None, None, now, now + timedelta(seconds=5)])
            session.add(delivery)
    with database.read() as session:
        rows = list(session.execute(select(Delivery)).scalars())
        statuses = {s: repository.get_subscription(session, s) for s in subscriptions}
    expected = dispatchable(
        [
            Unsettled(
                id=row.id or 0,
                stream=(row.subscription_id, row.lead_id),
                due_at=row.next_attempt_at or now,
                leased_until=row.leased_until,
                held=statuses[row.subscription_id].status != "active",  # type: ignore[union-attr]
            )
            for row in rows
            if row.status == "pending"
        ],
        now,
    )
    with database.transaction() as session:
        claimed = repository.claim_deliveries(session, now=now, limit=100, lease=LEASE)
    assert [c.id for c in claimed] == [m.id for m in expected]
    assert expected, "the scenario should have something to send"
    # Claimed rows are leased: claiming again at once finds none of them.
    with database.transaction() as session:
        again = repository.claim_deliveries(session, now=now, limit=100, lease=LEASE)
    assert not {c.id for c in again} & {c.id for c in claimed}


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_concurrent_claims_skip_locked_rows_instead_of_waiting(
    database: Database, clock: FakeClock
) -> None:
    subscription_id = subscription(database, clock)
    with database.transaction() as session:
        for index in range(6):
            repository.add_delivery(
                session,
                subscription_id=subscription_id,
                lead_id=uuid.uuid4(),
                event_id=f"e{index}",
                event_type="leadflow.lead.sla.v1",
                body="{}",
                now=clock.now(),
            )
    with database.transaction() as first:
        mine = repository.claim_deliveries(first, now=clock.now(), limit=3, lease=LEASE)
        # Still uncommitted: the other instance neither waits nor takes the same rows.
        with database.transaction() as second:
            theirs = repository.claim_deliveries(second, now=clock.now(), limit=6, lease=LEASE)
    assert len(mine) == 3
    assert len(theirs) == 3
    assert not {c.id for c in mine} & {c.id for c in theirs}
    with database.read() as session:
        leased = session.execute(
            select(Delivery).where(col(Delivery.lease_token).is_not(None))
        ).scalars()
        assert len(list(leased)) == 6


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_receivers_are_read_once_a_transaction_and_anew_in_the_next(
    database: Database, clock: FakeClock
) -> None:
    active = subscription(database, clock)
    paused = subscription(database, clock, "paused")
    subscription(database, clock, "disabled")
    with database.transaction() as session:
        first = repository.receivers(session)
        assert {receiver.subscription_id for receiver in first} == {active, paused}
        added_meanwhile = subscription(database, clock)  # another transaction commits one
        assert repository.receivers(session) == first  # the consumer batch's snapshot
    with database.transaction() as session:
        assert {receiver.subscription_id for receiver in repository.receivers(session)} == {
            active,
            paused,
            added_meanwhile,
        }
