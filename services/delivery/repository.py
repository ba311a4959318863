"""Every query of the delivery service. Nothing here commits: the caller's transaction does.

Claims are safe with several instances on one PostgreSQL database: due rows are selected
``FOR UPDATE SKIP LOCKED`` and leased (``leased_until`` and a token) in a short transaction,
sent outside it, and settled in another, by the lease holder only. A row is claimable only
when no earlier row of its stream (the lead, per subscription or per CRM) is still pending:
the rule of :func:`services.delivery.domain.ordering.dispatchable`, in SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from services.delivery.domain import filters
from services.delivery.domain.breaker import CircuitBreaker
from services.delivery.domain.retry import Classification, RetrySchedule
from services.delivery.domain.signing import message_id
from services.delivery.envelope import without_data
from services.delivery.models import (
    ERASURES,
    CrmWriteback,
    CrmWritebackAttempt,
    Delivery,
    DeliveryAttempt,
    LeadView,
    Subscription,
)
from shared.contracts import LeadErasedV1
from shared.db.bulk import upsert_rows
from shared.db.clauses import among
from shared.db.rows import table_of
from shared.ids import new_uuid

# ---------------------------------------------------------------------------- subscriptions


def create_subscription(
    session: Session,
    *,
    url: str,
    event_types: Sequence[str],
    grades: Sequence[str],
    campaigns: Sequence[str],
    description: str | None,
    secret: str,
    now: datetime,
) -> Subscription:
    subscription = Subscription(
        id=new_uuid(),
        url=url,
        description=description,
        event_types=sorted(set(event_types)),
        grades=sorted(set(grades)),
        campaigns=sorted(set(campaigns)),
        secret=secret,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    session.flush()
    return subscription


def get_subscription(
    session: Session, subscription_id: uuid.UUID, *, lock: bool = False
) -> Subscription | None:
    query = select(Subscription).where(col(Subscription.id) == subscription_id)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def list_subscriptions(session: Session) -> list[Subscription]:
    query = select(Subscription).order_by(col(Subscription.created_at), col(Subscription.id))
    return list(session.execute(query).scalars())


def change_subscription(
    session: Session,
    subscription: Subscription,
    *,
    url: str | None,
    event_types: Sequence[str] | None,
    grades: Sequence[str] | None,
    campaigns: Sequence[str] | None,
    description: str | None,
    description_set: bool,
    now: datetime,
) -> None:
    if url is not None:
        subscription.url = url
    if event_types is not None:
        subscription.event_types = sorted(set(event_types))
    if grades is not None:
        subscription.grades = sorted(set(grades))
    if campaigns is not None:
        subscription.campaigns = sorted(set(campaigns))
    if description_set:
        subscription.description = description
    subscription.updated_at = now
    session.add(subscription)


def delete_subscription(session: Session, subscription: Subscription) -> None:
    deliveries = select(col(Delivery.id)).where(col(Delivery.subscription_id) == subscription.id)
    session.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(deliveries)))
    session.execute(delete(Delivery).where(col(Delivery.subscription_id) == subscription.id))
    session.delete(subscription)
    session.flush()


def pause(session: Session, subscription: Subscription, *, reason: str, now: datetime) -> None:
    subscription.status = "paused"
    subscription.paused_reason = reason
    subscription.paused_at = now
    subscription.updated_at = now
    session.add(subscription)


def resume(session: Session, subscription: Subscription, *, now: datetime) -> int:
    """Active again; its waiting messages are due at once, with a fresh retry window."""
    subscription.status = "active"
    subscription.paused_reason = None
    subscription.paused_at = None
    subscription.consecutive_failures = 0
    subscription.updated_at = now
    session.add(subscription)
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.subscription_id) == subscription.id, col(Delivery.status) == "pending")
        .values(next_attempt_at=None, window_started_at=None, failures=0)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Receiver:
    """A subscription new events are queued for, with its filter."""

    subscription_id: uuid.UUID
    filter: filters.SubscriptionFilter


_RECEIVERS = "delivery.receivers"


def receivers(session: Session) -> list[Receiver]:
    """Subscriptions new events are queued for: active and paused ones (not disabled).

    Read once per transaction: the consumer asks for every event of its batch, and the
    subscriptions it sees are those of the transaction's start either way."""
    transaction = session.get_transaction()
    cached = session.info.get(_RECEIVERS)
    if cached is not None and cached[0] is transaction:
        return list(cached[1])
    query = select(Subscription).where(col(Subscription.status).in_(("active", "paused")))
    found = [
        Receiver(subscription.id, subscription_filter(subscription))
        for subscription in session.execute(query).scalars()
    ]
    session.info[_RECEIVERS] = (transaction, found)
    return list(found)


def subscription_filter(subscription: Subscription) -> filters.SubscriptionFilter:
    return filters.SubscriptionFilter.of(
        subscription.event_types, subscription.grades, subscription.campaigns
    )


# ---------------------------------------------------------------------------- lead views


def lead_view(session: Session, lead_id: uuid.UUID) -> filters.LeadView | None:
    return lead_views(session, {lead_id}).get(lead_id)


def lead_views(
    session: Session, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, filters.LeadView]:
    if not lead_ids:
        return {}
    table = table_of(LeadView)
    rows = session.execute(
        select(table.c.lead_id, table.c.campaign, table.c.grade, table.c.crm_ids).where(
            among(session, table.c.lead_id, lead_ids)
        )
    )
    return {
        row.lead_id: filters.LeadView(
            campaign=row.campaign, grade=row.grade, crm_ids=dict(row.crm_ids)
        )
        for row in rows
    }


def save_lead_views(
    session: Session, views: Mapping[uuid.UUID, filters.LeadView], *, now: datetime
) -> None:
    """One upsert for them all, no ORM object: the consumer writes a view for nearly every
    event, and a unit-of-work flush each time cost more than the rest of the handler."""
    if not views:
        return
    rows = [
        {
            "lead_id": lead_id,
            "campaign": view.campaign,
            "grade": view.grade,
            "crm_ids": dict(view.crm_ids),
            "updated_at": now,
        }
        for lead_id, view in views.items()
    ]
    changed = ("campaign", "grade", "crm_ids", "updated_at")
    upsert_rows(session, table_of(LeadView), rows, key=["lead_id"], update=changed)


# ---------------------------------------------------------------------------- deliveries


def add_delivery(
    session: Session,
    *,
    subscription_id: uuid.UUID,
    lead_id: uuid.UUID,
    event_id: str,
    event_type: str,
    body: str,
    now: datetime,
) -> Delivery:
    delivery = Delivery(
        message_id=message_id(new_uuid()),
        subscription_id=subscription_id,
        lead_id=lead_id,
        event_id=event_id,
        event_type=event_type,
        body=body,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    message_id: str
    url: str
    secret: str
    body: str
    token: str


def _due(model: Any, now: datetime) -> list[ColumnElement[bool]]:
    return [
        col(model.status) == "pending",
        or_(col(model.next_attempt_at).is_(None), col(model.next_attempt_at) <= now),
        or_(col(model.leased_until).is_(None), col(model.leased_until) <= now),
    ]


def _claimable_deliveries(now: datetime) -> Select[Delivery]:
    earlier = aliased(Delivery)
    blocked = exists().where(
        col(earlier.subscription_id) == col(Delivery.subscription_id),
        col(earlier.lead_id) == col(Delivery.lead_id),
        col(earlier.status) == "pending",
        col(earlier.id) < col(Delivery.id),
    )
    return (
        select(Delivery)
        .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
        .where(*_due(Delivery, now), col(Subscription.status) == "active", ~blocked)
        .order_by(col(Delivery.id))
    )


def has_due_deliveries(session: Session, *, now: datetime) -> bool:
    """A read-only look first, so that an idle dispatcher takes no write lock (SQLite)."""
    return session.execute(_claimable_deliveries(now).limit(1)).first() is not None


def claim_deliveries(
    session: Session, *, now: datetime, limit: int, lease: timedelta
) -> list[ClaimedDelivery]:
    query = _claimable_deliveries(now).limit(limit).with_for_update(skip_locked=True, of=Delivery)
    deliveries = list(session.execute(query).scalars())
    if not deliveries:
        return []
    secrets = {
        row.id: row
        for row in session.execute(
            select(Subscription).where(
                col(Subscription.id).in_({d.subscription_id for d in deliveries})
            )
        ).scalars()
    }
    claimed = []
    for delivery in deliveries:
        assert delivery.id is not None
        token = new_uuid().hex
        delivery.leased_until = now + lease
        delivery.lease_token = token
        session.add(delivery)
        subscription = secrets[delivery.subscription_id]
        claimed.append(
            ClaimedDelivery(
                id=delivery.id,
                message_id=delivery.message_id,
                url=subscription.url,
                secret=subscription.secret,
                body=delivery.body,
                token=token,
            )
        )
    return claimed


@dataclass(frozen=True)
class AttemptRecord:
    """What happened on the wire, for the log."""

    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    retry_after: timedelta | None


def _next_attempt(
    row: Delivery | CrmWriteback,
    attempt: AttemptRecord,
    outcome: Classification,
    *,
    now: datetime,
    schedule: RetrySchedule,
    rand: float,
    give_up: bool = False,
) -> str:
    """Move a message's retry state after one attempt; answers the attempt's outcome."""
    row.attempts += 1
    row.window_started_at = row.window_started_at or attempt.started_at
    row.last_status_code = attempt.status_code
    row.last_error = attempt.error
    row.leased_until = None
    row.lease_token = None
    if outcome.verdict == "delivered":
        row.status = "delivered" if isinstance(row, Delivery) else "done"
        row.next_attempt_at = None
        row.settled_at = now
        return row.status
    row.failures += 1
    following = (
        None
        if give_up
        else schedule.next_attempt(
            failures=row.failures,
            window_started_at=row.window_started_at,
            now=now,
            rand=rand,
            retry_after=attempt.retry_after if outcome.honours_retry_after else None,
        )
    )
    if following is None:
        row.status = "failed"
        row.next_attempt_at = None
        row.settled_at = now
        return "given_up"
    row.next_attempt_at = following
    return "gone" if outcome.verdict == "gone" else "retry"


def settle_delivery(
    session: Session,
    *,
    delivery_id: int,
    token: str,
    attempt: AttemptRecord,
    outcome: Classification,
    now: datetime,
    schedule: RetrySchedule,
    breaker: CircuitBreaker,
    rand: float,
) -> str | None:
    """Record an attempt and its consequences; ``None`` when the lease was lost meanwhile."""
    delivery = session.execute(
        select(Delivery)
        .where(col(Delivery.id) == delivery_id, col(Delivery.lease_token) == token)
        .with_for_update()
    ).scalar_one_or_none()
    if delivery is None:
        return None
    result = _next_attempt(delivery, attempt, outcome, now=now, schedule=schedule, rand=rand)
    session.add(delivery)
    session.add(
        DeliveryAttempt(
            delivery_id=delivery_id,
            attempt=delivery.attempts,
            started_at=attempt.started_at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=attempt.error,
            response_excerpt=attempt.response_excerpt,
            outcome=result,
            next_attempt_at=delivery.next_attempt_at,
        )
    )
    subscription = get_subscription(session, delivery.subscription_id, lock=True)
    if subscription is not None:
        step = breaker.after(subscription.consecutive_failures, outcome)
        subscription.consecutive_failures = step.consecutive_failures
        subscription.client_errors += int(outcome.client_error)
        subscription.updated_at = now
        if step.transition == "pause" and subscription.status == "active":
            pause(
                session,
                subscription,
                reason=f"circuit open: {step.consecutive_failures} consecutive failures",
                now=now,
            )
        elif step.transition == "disable" and subscription.status != "disabled":
            subscription.status = "disabled"
            subscription.paused_reason = "the receiver answered 410 Gone"
            subscription.paused_at = now
        session.add(subscription)
    return result


def list_deliveries(
    session: Session,
    *,
    subscription_id: uuid.UUID,
    status: str | None = None,
    lead_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[Delivery]:
    query = select(Delivery).where(col(Delivery.subscription_id) == subscription_id)
    if status:
        query = query.where(col(Delivery.status) == status)
    if lead_id:
        query = query.where(col(Delivery.lead_id) == lead_id)
    return list(session.execute(query.order_by(col(Delivery.id)).limit(limit)).scalars())


def get_delivery(session: Session, delivery_id: int) -> Delivery | None:
    return session.get(Delivery, delivery_id)


def delivery_attempts(session: Session, delivery_id: int) -> list[DeliveryAttempt]:
    query = (
        select(DeliveryAttempt)
        .where(col(DeliveryAttempt.delivery_id) == delivery_id)
        .order_by(col(DeliveryAttempt.attempt))
    )
    return list(session.execute(query).scalars())


_REPLAYED = {
    "status": "pending",
    "next_attempt_at": None,
    "window_started_at": None,
    "failures": 0,
    "settled_at": None,
}


def replayable(session: Session, delivery: Delivery) -> bool:
    """A delivery of an erased lead is not sent again (its notice of erasure may be)."""
    if delivery.event_type == ERASED_TYPE:
        return True
    return delivery.status != "cancelled" and not ERASURES.is_erased(session, delivery.lead_id)


def replay_delivery(session: Session, delivery: Delivery) -> None:
    """Send again, as soon as its stream allows, with a fresh retry window."""
    for key, value in _REPLAYED.items():
        setattr(delivery, key, value)
    session.add(delivery)


def replay_since(session: Session, subscription_id: uuid.UUID, since: datetime) -> int:
    """Every delivery since a time, but those of erased leads (their notice of erasure
    excepted) and the cancelled ones: they are not to be sent again."""
    erased = select(ERASURES.erased.c.lead_id)
    result = session.execute(
        update(Delivery)
        .where(
            col(Delivery.subscription_id) == subscription_id,
            col(Delivery.created_at) >= since,
            col(Delivery.status) != "cancelled",
            or_(col(Delivery.event_type) == ERASED_TYPE, col(Delivery.lead_id).not_in(erased)),
        )
        .values(**_REPLAYED)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def count_deliveries(session: Session, subscription_id: uuid.UUID) -> dict[str, int]:
    rows = session.execute(
        select(col(Delivery.status), func.count())
        .where(col(Delivery.subscription_id) == subscription_id)
        .group_by(col(Delivery.status))
    )
    return {status: int(count) for status, count in rows}


# ---------------------------------------------------------------------------- CRM write-backs


def add_writeback(
    session: Session,
    *,
    lead_id: uuid.UUID,
    assignment_id: uuid.UUID,
    event_id: str,
    provider: str,
    record_id: str,
    owner_id: str,
    now: datetime,
) -> CrmWriteback:
    writeback = CrmWriteback(
        lead_id=lead_id,
        assignment_id=assignment_id,
        event_id=event_id,
        provider=provider,
        record_id=record_id,
        owner_id=owner_id,
        created_at=now,
    )
    session.add(writeback)
    session.flush()
    return writeback


@dataclass(frozen=True)
class ClaimedWriteback:
    id: int
    provider: str
    record_id: str
    owner_id: str
    token: str


def _claimable_writebacks(now: datetime, providers: Sequence[str]) -> Select[CrmWriteback]:
    earlier = aliased(CrmWriteback)
    blocked = exists().where(
        col(earlier.provider) == col(CrmWriteback.provider),
        col(earlier.lead_id) == col(CrmWriteback.lead_id),
        col(earlier.status) == "pending",
        col(earlier.id) < col(CrmWriteback.id),
    )
    return (
        select(CrmWriteback)
        .where(*_due(CrmWriteback, now), col(CrmWriteback.provider).in_(providers), ~blocked)
        .order_by(col(CrmWriteback.id))
    )


def has_due_writebacks(session: Session, *, now: datetime, providers: Sequence[str]) -> bool:
    return session.execute(_claimable_writebacks(now, providers).limit(1)).first() is not None


def claim_writebacks(
    session: Session, *, now: datetime, limit: int, lease: timedelta, providers: Sequence[str]
) -> list[ClaimedWriteback]:
    query = _claimable_writebacks(now, providers).limit(limit).with_for_update(skip_locked=True)
    claimed = []
    for writeback in session.execute(query).scalars():
        assert writeback.id is not None
        token = new_uuid().hex
        writeback.leased_until = now + lease
        writeback.lease_token = token
        session.add(writeback)
        claimed.append(
            ClaimedWriteback(
                id=writeback.id,
                provider=writeback.provider,
                record_id=writeback.record_id,
                owner_id=writeback.owner_id,
                token=token,
            )
        )
    return claimed


def settle_writeback(
    session: Session,
    *,
    writeback_id: int,
    token: str,
    attempt: AttemptRecord,
    outcome: Classification,
    now: datetime,
    schedule: RetrySchedule,
    rand: float,
    permanent: bool = False,
) -> str | None:
    writeback = session.execute(
        select(CrmWriteback)
        .where(col(CrmWriteback.id) == writeback_id, col(CrmWriteback.lease_token) == token)
        .with_for_update()
    ).scalar_one_or_none()
    if writeback is None:
        return None
    # permanent: a request that can never succeed (an owner id the CRM cannot take).
    result = _next_attempt(
        writeback, attempt, outcome, now=now, schedule=schedule, rand=rand, give_up=permanent
    )
    session.add(writeback)
    session.add(
        CrmWritebackAttempt(
            writeback_id=writeback_id,
            attempt=writeback.attempts,
            started_at=attempt.started_at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=attempt.error,
            response_excerpt=attempt.response_excerpt,
            outcome=result,
            next_attempt_at=writeback.next_attempt_at,
        )
    )
    return result


def list_writebacks(
    session: Session, *, lead_id: uuid.UUID | None = None, limit: int = 100
) -> list[CrmWriteback]:
    query = select(CrmWriteback)
    if lead_id:
        query = query.where(col(CrmWriteback.lead_id) == lead_id)
    return list(session.execute(query.order_by(col(CrmWriteback.id)).limit(limit)).scalars())


def writeback_attempts(session: Session, writeback_id: int) -> list[CrmWritebackAttempt]:
    query = (
        select(CrmWritebackAttempt)
        .where(col(CrmWritebackAttempt.writeback_id) == writeback_id)
        .order_by(col(CrmWritebackAttempt.attempt))
    )
    return list(session.execute(query).scalars())


# ---------------------------------------------------------------------------- erasure

ERASED_TYPE = LeadErasedV1.cloudevents_type()
ERASED_TEXT = "[erased]"


def erase_lead(session: Session, lead_id: uuid.UUID, *, now: datetime) -> set[uuid.UUID]:
    """Anonymise what the service holds of an erased lead; answer the subscriptions that were
    sent (or were to be sent) something of it.

    Its waiting deliveries and CRM write-backs are cancelled (a lease in flight is lost: the
    attempt's outcome is not recorded); every delivery keeps its envelope but not its data
    (``{"lead_id": ...}`` only); write-backs lose the CRM record id; the attempt logs lose
    the receivers' and CRMs' responses and errors; the lead view loses its CRM ids. Notices
    of erasure (``leads.erased`` deliveries) are left as they are.
    """
    holders: set[uuid.UUID] = set()
    deliveries = session.execute(
        select(Delivery).where(
            col(Delivery.lead_id) == lead_id, col(Delivery.event_type) != ERASED_TYPE
        )
    ).scalars()
    delivery_ids = []
    for delivery in deliveries:
        holders.add(delivery.subscription_id)
        delivery_ids.append(delivery.id)
        delivery.body = without_data(delivery.body)
        _cancel(delivery, now=now)
        session.add(delivery)
    writeback_ids = []
    for writeback in session.execute(
        select(CrmWriteback).where(col(CrmWriteback.lead_id) == lead_id)
    ).scalars():
        writeback_ids.append(writeback.id)
        writeback.record_id = ""
        _cancel(writeback, now=now)
        session.add(writeback)
    for attempts, owner, ids in (
        (DeliveryAttempt, DeliveryAttempt.delivery_id, delivery_ids),
        (CrmWritebackAttempt, CrmWritebackAttempt.writeback_id, writeback_ids),
    ):
        if ids:
            session.execute(
                update(attempts)
                .where(col(owner).in_(ids), col(attempts.error).is_not(None))
                .values(error=ERASED_TEXT)
            )
            session.execute(
                update(attempts).where(col(owner).in_(ids)).values(response_excerpt=None)
            )
    view = session.get(LeadView, lead_id)
    if view is not None and view.crm_ids:
        view.crm_ids = {}
        view.updated_at = now
        session.add(view)
    return holders


def _cancel(row: Delivery | CrmWriteback, *, now: datetime) -> None:
    if row.last_error is not None:
        row.last_error = ERASED_TEXT
    row.leased_until = None
    row.lease_token = None
    if row.status == "pending":
        row.status = "cancelled"
        row.next_attempt_at = None
        row.settled_at = now
