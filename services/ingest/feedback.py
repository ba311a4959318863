"""Status changes from the CRM or a rep: ``POST /v1/feedback`` and the CRM adapters, each
published as LeadFeedbackV1 on leads.feedback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlmodel import Session

from services.ingest import idempotency, repository
from services.ingest.api import IdempotencyKey
from services.ingest.auth import ApiKeyRoute
from services.ingest.domain.email import InvalidEmail, normalize_email
from services.ingest.models import Feedback, Lead
from shared.contracts import FeedbackStatus, LeadFeedbackV1, RejectionReason
from shared.http import DbSession, RequestOutbox, problem
from shared.ids import new_uuid
from shared.outbox import Outbox


class LeadNotFound(LookupError):
    """No lead answers to the reference given (an erased lead answers to none)."""


def resolve_lead(
    session: Session,
    *,
    lead_id: uuid.UUID | None = None,
    email: str | None = None,
    crm: tuple[str, str] | None = None,
) -> Lead:
    if lead_id is not None:
        lead = repository.lead_by_id(session=session, lead_id=lead_id)
        if lead is not None and lead.erased_at is not None:
            raise LeadNotFound("this lead was erased on request")
        if lead is not None:
            return lead
    if crm is not None:
        lead = repository.lead_by_crm_record(session=session, provider=crm[0], record_id=crm[1])
        if lead is not None:
            return lead
    if email:
        try:
            address = normalize_email(email).address
        except InvalidEmail:
            address = email.strip().lower()
        lead = repository.lead_by_email(session=session, email=address)
        if lead is not None:
            return lead
    raise LeadNotFound("no lead with this lead_id, email or CRM record id")


def record_feedback(
    session: Session,
    outbox: Outbox,
    *,
    lead: Lead,
    status: FeedbackStatus,
    source: str,
    rejection_reason: RejectionReason | None = None,
    note: str | None = None,
    opportunity_id: str | None = None,
    amount: Decimal | None = None,
    currency: str | None = None,
    crm_record_id: str | None = None,
    rep_crm_user_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Feedback:
    now = datetime.now(UTC)
    row = Feedback(
        id=new_uuid(),
        lead_id=lead.id,
        status=status,
        rejection_reason=rejection_reason,
        source=source,
        crm_record_id=crm_record_id,
        occurred_at=occurred_at or now,
        received_at=now,
    )
    session.add(row)
    outbox.add(
        session,
        LeadFeedbackV1(
            lead_id=lead.id,
            status=status,
            rejection_reason=rejection_reason,
            note=note[:2000] if note else None,
            opportunity_id=opportunity_id,
            amount=amount,
            currency=currency,
            source=source,
            crm_record_id=crm_record_id,
            rep_crm_user_id=rep_crm_user_id,
            occurred_at=row.occurred_at,
        ),
    )
    return row


class FeedbackIn(BaseModel):
    """What sales did with a lead. Name the lead by ``lead_id``, ``email`` or a CRM record
    (``crm_provider`` and ``crm_record_id``)."""

    lead_id: uuid.UUID | None = None
    email: str | None = None
    crm_provider: str | None = Field(default=None, max_length=32)
    crm_record_id: str | None = Field(default=None, max_length=200)
    status: FeedbackStatus
    rejection_reason: RejectionReason | None = None
    note: str | None = Field(default=None, max_length=2_000)
    opportunity_id: str | None = None
    amount: Decimal | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    source: str = Field(default="api", max_length=32)
    rep_crm_user_id: str | None = None
    occurred_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _rules(self) -> FeedbackIn:
        if self.lead_id is None and not self.email and not self.crm_record_id:
            raise ValueError("name the lead: lead_id, email or crm_record_id")
        if self.crm_record_id and not self.crm_provider:
            raise ValueError("crm_record_id needs crm_provider")
        if self.status == "rejected" and self.rejection_reason is None:
            raise ValueError("rejection_reason is required when status is 'rejected'")
        if self.status != "rejected" and self.rejection_reason is not None:
            raise ValueError("rejection_reason is only allowed when status is 'rejected'")
        return self


class FeedbackAccepted(BaseModel):
    feedback_id: uuid.UUID
    lead_id: uuid.UUID
    status: FeedbackStatus


router = APIRouter(route_class=ApiKeyRoute, tags=["feedback"])


@router.post(
    "/v1/feedback",
    status_code=202,
    response_model=FeedbackAccepted,
    responses={401: {}, 404: {}, 422: {}},
    summary="A status change: contacted, accepted, rejected (with a reason), converted, won, lost",
)
def post_feedback(
    request: Request,
    body: FeedbackIn,
    session: DbSession,
    outbox: RequestOutbox,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    claim = None
    if idempotency_key:
        claimed = idempotency.claim(
            session,
            scope=f"api:{request.state.api_key_id}",
            key=idempotency_key,
            fingerprint=idempotency.fingerprint("POST /v1/feedback", body.model_dump_json()),
        )
        if isinstance(claimed, Response):
            return claimed
        claim = claimed
    crm = (
        (body.crm_provider, body.crm_record_id)
        if body.crm_provider and body.crm_record_id
        else None
    )
    try:
        lead = resolve_lead(session, lead_id=body.lead_id, email=body.email, crm=crm)
    except LeadNotFound as error:
        field: Literal["lead_id", "email", "crm_record_id"] = (
            "lead_id" if body.lead_id else "email" if body.email else "crm_record_id"
        )
        return idempotency.settle(session, claim, problem(404, f"body.{field}", str(error)))
    row = record_feedback(
        session,
        outbox,
        lead=lead,
        status=body.status,
        rejection_reason=body.rejection_reason,
        note=body.note,
        opportunity_id=body.opportunity_id,
        amount=body.amount,
        currency=body.currency,
        source=body.source,
        crm_record_id=body.crm_record_id,
        rep_crm_user_id=body.rep_crm_user_id,
        occurred_at=body.occurred_at,
    )
    answer = FeedbackAccepted(feedback_id=row.id, lead_id=lead.id, status=body.status)
    return idempotency.settle(
        session, claim, JSONResponse(answer.model_dump(mode="json"), status_code=202)
    )
