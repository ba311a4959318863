"""The subscriptions API: register, list, pause, resume and delete webhook receivers; read the
delivery log; replay one delivery or a subscription's deliveries since a time; read the CRM
write-back log."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints

from services.delivery import repository
from services.delivery.clock import SYSTEM_CLOCK, Clock
from services.delivery.domain.filters import EventType
from services.delivery.domain.signing import new_secret
from services.delivery.models import (
    CrmWriteback,
    CrmWritebackAttempt,
    Delivery,
    DeliveryAttempt,
    Subscription,
)
from shared.contracts import Grade
from shared.http import DbSession, ReadSession, RowId, problem, runtime_of

router = APIRouter(prefix="/v1", tags=["subscriptions"])

WebhookUrl = Annotated[HttpUrl, UrlConstraints(max_length=2000, allowed_schemes=["http", "https"])]
Campaign = Annotated[str, Field(min_length=1, max_length=200)]


def _clock(request: Request) -> Clock:
    clock: Clock = runtime_of(request).state.get("clock", SYSTEM_CLOCK)
    return clock


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grades: list[Grade] = Field(default_factory=list, description="Any of these grades; empty: any")
    campaigns: list[Campaign] = Field(
        default_factory=list, description="Any of these campaigns; empty: any"
    )


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl = Field(description="Where to POST the events (http or https)")
    event_types: list[EventType] = Field(min_length=1, description="Public topics to receive")
    filters: Filters = Field(default_factory=Filters)
    description: str | None = Field(default=None, max_length=500)


class SubscriptionChange(BaseModel):
    """What a PATCH may change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1)
    filters: Filters | None = None
    description: str | None = Field(default=None, max_length=500)


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    filters: Filters
    status: Literal["active", "paused", "disabled"]
    paused_reason: str | None
    paused_at: datetime | None
    consecutive_failures: int
    client_errors: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, subscription: Subscription) -> SubscriptionOut:
        return cls(
            id=subscription.id,
            url=subscription.url,
            description=subscription.description,
            event_types=subscription.event_types,
            filters=Filters.model_validate(
                {"grades": subscription.grades, "campaigns": subscription.campaigns}
            ),
            status=subscription.status,
            paused_reason=subscription.paused_reason,
            paused_at=subscription.paused_at,
            consecutive_failures=subscription.consecutive_failures,
            client_errors=subscription.client_errors,
            created_at=subscription.created_at,
            updated_at=subscription.updated_at,
        )


class SubscriptionDetail(SubscriptionOut):
    deliveries: dict[str, int] = Field(description="How many deliveries are in each status")


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="whsec_...: shown once; verify webhook-signature with it")


class DeliveryOut(BaseModel):
    id: int
    message_id: str = Field(description="The webhook-id header: the same on every attempt")
    subscription_id: uuid.UUID
    lead_id: uuid.UUID
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    settled_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls.model_validate(delivery, from_attributes=True)


class AttemptOut(BaseModel):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    outcome: str
    next_attempt_at: datetime | None


class DeliveryDetail(DeliveryOut):
    event: dict[str, Any] = Field(description="The body sent: a CloudEvents JSON envelope")
    log: list[AttemptOut]


class Replayed(BaseModel):
    replayed: int


class ReplaySince(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Replay deliveries created at or after this time")


class WritebackOut(BaseModel):
    id: int
    lead_id: uuid.UUID
    assignment_id: uuid.UUID
    provider: str
    record_id: str
    owner_id: str
    status: Literal["pending", "done", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    settled_at: datetime | None
    log: list[AttemptOut]

    @classmethod
    def of(cls, writeback: CrmWriteback, log: list[CrmWritebackAttempt]) -> WritebackOut:
        fields = {name: getattr(writeback, name) for name in cls.model_fields if name != "log"}
        return cls(**fields, log=[_attempt(row) for row in log])


def _attempt(row: DeliveryAttempt | CrmWritebackAttempt) -> AttemptOut:
    return AttemptOut.model_validate(row, from_attributes=True)


def _missing_subscription() -> JSONResponse:
    return problem(404, "path.subscription_id", "no such subscription")


def _missing_delivery() -> JSONResponse:
    return problem(404, "path.delivery_id", "no such delivery")


@router.post("/subscriptions", status_code=201, response_model=SubscriptionCreated)
def create_subscription(
    body: SubscriptionIn, session: DbSession, request: Request
) -> SubscriptionCreated:
    secret = new_secret(secrets.token_bytes(32))
    subscription = repository.create_subscription(
        session,
        url=str(body.url),
        event_types=body.event_types,
        grades=body.filters.grades,
        campaigns=body.filters.campaigns,
        description=body.description,
        secret=secret,
        now=_clock(request).now(),
    )
    return SubscriptionCreated(**SubscriptionOut.of(subscription).model_dump(), secret=secret)


@router.get("/subscriptions")
def list_subscriptions(session: ReadSession) -> list[SubscriptionOut]:
    return [SubscriptionOut.of(s) for s in repository.list_subscriptions(session)]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionDetail)
def get_subscription(subscription_id: uuid.UUID, session: ReadSession) -> Any:
    subscription = repository.get_subscription(session, subscription_id)
    if subscription is None:
        return _missing_subscription()
    counts = {"pending": 0, "delivered": 0, "failed": 0}
    counts.update(repository.count_deliveries(session, subscription_id))
    return SubscriptionDetail(**SubscriptionOut.of(subscription).model_dump(), deliveries=counts)


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def change_subscription(
    subscription_id: uuid.UUID, body: SubscriptionChange, session: DbSession, request: Request
) -> Any:
    """Change the URL (a receiver that moved), the event types, the filters or the
    description. The secret and the queued deliveries stay; queued messages go to the new URL."""
    subscription = repository.get_subscription(session, subscription_id, lock=True)
    if subscription is None:
        return _missing_subscription()
    for name in body.model_fields_set:
        if getattr(body, name) is None and name != "description":
            return problem(422, f"body.{name}", "may be left out, but not null")
    repository.change_subscription(
        session,
        subscription,
        url=str(body.url) if body.url is not None else None,
        event_types=body.event_types,
        grades=body.filters.grades if body.filters is not None else None,
        campaigns=body.filters.campaigns if body.filters is not None else None,
        description=body.description,
        description_set="description" in body.model_fields_set,
        now=_clock(request).now(),
    )
    return SubscriptionOut.of(subscription)


@router.delete("/subscriptions/{subscription_id}", status_code=204, response_model=None)
def delete_subscription(subscription_id: uuid.UUID, session: DbSession) -> Any:
    subscription = repository.get_subscription(session, subscription_id, lock=True)
    if subscription is None:
        return _missing_subscription()
    repository.delete_subscription(session, subscription)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/pause", response_model=SubscriptionOut)
def pause_subscription(subscription_id: uuid.UUID, session: DbSession, request: Request) -> Any:
    subscription = repository.get_subscription(session, subscription_id, lock=True)
    if subscription is None:
        return _missing_subscription()
    if subscription.status == "active":
        repository.pause(session, subscription, reason="paused by hand", now=_clock(request).now())
    return SubscriptionOut.of(subscription)


@router.post("/subscriptions/{subscription_id}/resume", response_model=SubscriptionOut)
def resume_subscription(subscription_id: uuid.UUID, session: DbSession, request: Request) -> Any:
    subscription = repository.get_subscription(session, subscription_id, lock=True)
    if subscription is None:
        return _missing_subscription()
    repository.resume(session, subscription, now=_clock(request).now())
    return SubscriptionOut.of(subscription)


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    subscription_id: uuid.UUID,
    session: ReadSession,
    status: Annotated[
        Literal["pending", "delivered", "failed", "cancelled"] | None, Query()
    ] = None,
    lead_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    if repository.get_subscription(session, subscription_id) is None:
        return _missing_subscription()
    return [
        DeliveryOut.of(d)
        for d in repository.list_deliveries(
            session, subscription_id=subscription_id, status=status, lead_id=lead_id, limit=limit
        )
    ]


@router.post("/subscriptions/{subscription_id}/replay", status_code=202, response_model=Replayed)
def replay_subscription(subscription_id: uuid.UUID, body: ReplaySince, session: DbSession) -> Any:
    subscription = repository.get_subscription(session, subscription_id, lock=True)
    if subscription is None:
        return _missing_subscription()
    return Replayed(replayed=repository.replay_since(session, subscription_id, body.since))


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(delivery_id: RowId, session: ReadSession) -> Any:
    delivery = repository.get_delivery(session, delivery_id)
    if delivery is None:
        return _missing_delivery()
    return DeliveryDetail(
        **DeliveryOut.of(delivery).model_dump(),
        event=json.loads(delivery.body),
        log=[_attempt(row) for row in repository.delivery_attempts(session, delivery_id)],
    )


@router.post("/deliveries/{delivery_id}/replay", status_code=202, response_model=DeliveryOut)
def replay_delivery(delivery_id: RowId, session: DbSession) -> Any:
    delivery = repository.get_delivery(session, delivery_id)
    if delivery is None:
        return _missing_delivery()
    if not repository.replayable(session, delivery):
        return problem(409, "path.delivery_id", "the lead was erased: not sent again")
    repository.replay_delivery(session, delivery)
    return DeliveryOut.of(delivery)


@router.get("/crm-writebacks", tags=["crm"], response_model=list[WritebackOut])
def list_writebacks(
    session: ReadSession,
    lead_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return [
        WritebackOut.of(row, repository.writeback_attempts(session, row.id or 0))
        for row in repository.list_writebacks(session, lead_id=lead_id, limit=limit)
    ]
