"""CRM webhooks. Each door checks its provider's own authentication on the raw request
before the body is parsed, reads the provider's documented payload, and answers a
redelivery with the first answer, creating nothing new.

* ``POST /v1/webhooks/hubspot``: workflow "Send a webhook" (contact properties) and
  webhooks-API events; ``X-HubSpot-Signature-v3`` (5-minute window), or v2 for older apps.
* ``POST /v1/webhooks/salesforce/{token}``: Outbound Messages (SOAP, up to 100 Lead or
  Contact notifications), deduplicated per notification id, acknowledged in SOAP.
* ``POST /v1/webhooks/pipedrive``: person, lead and deal webhooks (v1 and v2), basic auth.
* ``POST /v1/webhooks/standard``: any sender signing with Standard Webhooks.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import Session

from services.ingest import idempotency, repository
from services.ingest.api import LeadIn, settings_of
from services.ingest.capture import Rejected, capture
from services.ingest.domain import crm
from services.ingest.domain.normalize import parse_datetime
from services.ingest.domain.signatures import (
    SignatureError,
    verify_basic_auth,
    verify_hubspot_v2,
    verify_hubspot_v3,
    verify_standard_webhooks,
)
from services.ingest.domain.submission import Submission
from services.ingest.feedback import FeedbackIn, LeadNotFound, record_feedback, resolve_lead
from services.ingest.settings import IngestSettings
from shared.http import DbSession, RequestOutbox, problem
from shared.observability.logs import get_logger
from shared.outbox import Outbox

log = get_logger(__name__)
router = APIRouter(tags=["webhooks"])


def _refuse(error: SignatureError) -> Response:
    return problem(401, "header", str(error), type="unauthorized")


def _not_enabled(provider: str) -> Response:
    return problem(404, "path", f"the {provider} webhook is not configured")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise crm.UnreadablePayload(f"not JSON: {error}") from None


def apply_record(
    session: Session, outbox: Outbox, *, record: crm.CrmRecord, settings: IngestSettings
) -> dict[str, Any]:
    """A person from a CRM: a new lead or an update (a ``crm_sync`` touchpoint), and its
    status change, if any, as feedback. A status change of a known lead is feedback only."""
    known = repository.lead_by_crm_record(
        session=session, provider=record.provider, record_id=record.record_id
    )
    version = _crm_time(record.occurred_at)
    link = repository.crm_link(
        session=session, provider=record.provider, record_id=record.record_id
    )
    if known is not None and link is not None and crm.is_superseded(version, link.modified_at):
        # An older version, delivered late: a newer one was applied already.
        return {"record_id": record.record_id, "lead_id": str(known.id), "status": "superseded"}
    fields = dict(record.fields)
    if record.occurred_at:
        fields["occurred_at"] = record.occurred_at
    if known is None or record.status is None:
        if known is not None and not (fields.get("email") or fields.get("phone")):
            fields["email"] = known.email
            fields["phone"] = known.phone
        submission = Submission(
            fields=fields,
            attributes=record.attributes,
            door="webhook",
            source=record.provider,
            touchpoint_type="crm_sync",
            reference=record.event_id,
            crm_record=(record.provider, record.record_id),
        )
        try:
            with session.begin_nested():
                captured = capture(session, outbox, submission=submission, settings=settings)
        except Rejected as rejected:
            log.warning(
                "CRM record refused",
                provider=record.provider,
                record_id=record.record_id,
                reason=str(rejected),
            )
            return {"record_id": record.record_id, "status": "rejected", "reason": str(rejected)}
        lead = repository.lead_by_id(session=session, lead_id=captured.lead_id)
        result: dict[str, Any] = {
            "record_id": record.record_id,
            "lead_id": str(captured.lead_id),
            "status": captured.change,
        }
    else:
        lead = known
        result = {"record_id": record.record_id, "lead_id": str(known.id), "status": "known"}
    if record.status is not None and lead is not None:
        record_feedback(
            session,
            outbox,
            lead=lead,
            status=record.status.status,
            rejection_reason=record.status.rejection_reason,
            note=record.status.note,
            source=record.provider,
            crm_record_id=record.record_id,
        )
        result["feedback"] = record.status.status
    _remember_version(session, record=record, version=version)
    return result


def _crm_time(text: str | None) -> datetime | None:
    try:
        return parse_datetime(text) if text else None
    except ValueError:
        return None


def _remember_version(session: Session, *, record: crm.CrmRecord, version: datetime | None) -> None:
    link = repository.crm_link(
        session=session, provider=record.provider, record_id=record.record_id
    )
    if (
        link is not None
        and version is not None
        and (link.modified_at is None or version > link.modified_at)
    ):
        link.modified_at = version
        session.add(link)


# ------------------------------------------------------------------ HubSpot


def _hubspot_uri(request: Request, settings: IngestSettings) -> str:
    if settings.public_base_url:
        query = f"?{request.url.query}" if request.url.query else ""
        return settings.public_base_url.rstrip("/") + request.url.path + query
    return str(request.url)


@router.post("/v1/webhooks/hubspot", summary="HubSpot workflow webhooks and webhook events")
async def hubspot(request: Request, session: DbSession, outbox: RequestOutbox) -> Response:
    settings = settings_of(request)
    if not settings.hubspot_client_secret:
        return _not_enabled("HubSpot")
    body = await request.body()
    headers = request.headers
    uri = _hubspot_uri(request, settings)
    try:
        if headers.get("x-hubspot-signature-v3"):
            verify_hubspot_v3(
                client_secret=settings.hubspot_client_secret,
                method=request.method,
                uri=uri,
                body=body,
                timestamp=headers.get("x-hubspot-request-timestamp"),
                signature=headers.get("x-hubspot-signature-v3"),
                now_ms=int(time.time() * 1000),
            )
        elif headers.get("x-hubspot-signature-version", "").lower() == "v2":
            verify_hubspot_v2(
                client_secret=settings.hubspot_client_secret,
                method=request.method,
                uri=uri,
                body=body,
                signature=headers.get("x-hubspot-signature"),
            )
        else:
            raise SignatureError("X-HubSpot-Signature-v3 (or a v2 signature) required")
    except SignatureError as error:
        return _refuse(error)
    return await asyncio.to_thread(_hubspot, session, outbox, body=body, settings=settings)


def _hubspot(
    session: Session, outbox: Outbox, *, body: bytes, settings: IngestSettings
) -> Response:
    key = idempotency.fingerprint(body)
    claimed = idempotency.claim(session, scope="webhook:hubspot", key=key, fingerprint=key)
    if isinstance(claimed, Response):
        return claimed
    try:
        payload = _json(body)
        if isinstance(payload, list):  # webhooks API: events with ids, no properties
            results = [_hubspot_event(session, outbox, event) for event in payload]
        else:
            record = crm.hubspot_contact(payload, event_id=key[:32])
            results = [apply_record(session, outbox, record=record, settings=settings)]
    except crm.UnreadablePayload as error:
        return idempotency.settle(session, claimed, problem(422, "body", str(error)))
    return idempotency.settle(session, claimed, JSONResponse({"results": results}))


def _hubspot_event(session: Session, outbox: Outbox, event: Any) -> dict[str, Any]:
    """``contact.propertyChange`` of ``hs_lead_status`` or ``lifecyclestage``: feedback."""
    if not isinstance(event, Mapping) or "objectId" not in event:
        raise crm.UnreadablePayload("a webhook event without objectId")
    record_id = str(event["objectId"])
    name, value = event.get("propertyName"), str(event.get("propertyValue") or "")
    change = None
    if name == "hs_lead_status":
        change = crm.HUBSPOT_LEAD_STATUS.get(value.upper())
    elif name == "lifecyclestage":
        change = crm.HUBSPOT_LIFECYCLE.get(value.lower())
    if change is None:
        return {"record_id": record_id, "status": "ignored"}
    try:
        lead = resolve_lead(session, crm=("hubspot", record_id))
    except LeadNotFound:
        return {"record_id": record_id, "status": "unknown_record"}
    record_feedback(
        session,
        outbox,
        lead=lead,
        status=change.status,
        rejection_reason=change.rejection_reason,
        source="hubspot",
        crm_record_id=record_id,
    )
    return {"record_id": record_id, "lead_id": str(lead.id), "feedback": change.status}


# ------------------------------------------------------------------ Salesforce


def _soap_fault(message: str, status: int) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{crm.SOAP_ENV}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>soapenv:Client</faultcode><faultstring>{message}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=status, media_type="text/xml")


@router.post("/v1/webhooks/salesforce/{token}", summary="Salesforce Outbound Messages (SOAP)")
async def salesforce(
    token: str, request: Request, session: DbSession, outbox: RequestOutbox
) -> Response:
    settings = settings_of(request)
    if not settings.salesforce_path_token:
        return _not_enabled("Salesforce")
    if not hmac.compare_digest(token.encode(), settings.salesforce_path_token.encode()):
        return _soap_fault("unknown endpoint token", 401)
    body = await request.body()
    return await asyncio.to_thread(_salesforce, session, outbox, body=body, settings=settings)


def _salesforce(
    session: Session, outbox: Outbox, *, body: bytes, settings: IngestSettings
) -> Response:
    try:
        message = crm.salesforce_notifications(body)
    except crm.UnreadablePayload as error:
        return _soap_fault(str(error), 400)
    allowed = settings.salesforce_organization_ids
    if allowed and message.organization_id not in allowed:
        return _soap_fault("OrganizationId is not allowed", 403)
    for record in message.notifications:
        claimed = idempotency.claim(
            session, scope="webhook:salesforce", key=record.event_id, fingerprint="notification"
        )
        if isinstance(claimed, Response):
            continue  # a redelivered notification: done already
        result = apply_record(session, outbox, record=record, settings=settings)
        claimed.answer(JSONResponse(result))
    return Response(crm.SALESFORCE_ACK, media_type="text/xml")


# ------------------------------------------------------------------ Pipedrive


@router.post("/v1/webhooks/pipedrive", summary="Pipedrive person, lead and deal webhooks")
async def pipedrive(request: Request, session: DbSession, outbox: RequestOutbox) -> Response:
    settings = settings_of(request)
    if not (settings.pipedrive_username and settings.pipedrive_password):
        return _not_enabled("Pipedrive")
    try:
        verify_basic_auth(
            header=request.headers.get("authorization"),
            username=settings.pipedrive_username,
            password=settings.pipedrive_password,
        )
    except SignatureError as error:
        response = _refuse(error)
        response.headers["WWW-Authenticate"] = 'Basic realm="leadflow"'
        return response
    body = await request.body()
    return await asyncio.to_thread(_pipedrive, session, outbox, body=body, settings=settings)


def _pipedrive(
    session: Session, outbox: Outbox, *, body: bytes, settings: IngestSettings
) -> Response:
    try:
        payload = _json(body)
        event = crm.pipedrive_event(payload)
    except crm.UnreadablePayload as error:
        return problem(422, "body", str(error))
    # A retry differs only in its attempt counter: the rest identifies the event.
    meta = {k: v for k, v in payload["meta"].items() if k not in ("attempt", "retry")}
    key = idempotency.fingerprint(
        json.dumps({**payload, "meta": meta, "retry": None}, sort_keys=True)
    )
    claimed = idempotency.claim(session, scope="webhook:pipedrive", key=key, fingerprint=key)
    if isinstance(claimed, Response):
        return claimed
    result: dict[str, Any] = {"entity": event.entity, "status": "ignored"}
    deleted = event.action in ("delete", "deleted")
    if event.entity == "person" and not deleted:
        record = crm.pipedrive_person(event, event_id=key[:32])
        result = apply_record(session, outbox, record=record, settings=settings)
    elif event.entity == "deal" and not deleted:
        found = crm.pipedrive_deal_status(event)
        if found is not None:
            person_id, change = found
            try:
                lead = resolve_lead(session, crm=("pipedrive", person_id))
            except LeadNotFound:
                result = {"entity": "deal", "status": "unknown_person"}
            else:
                record_feedback(
                    session,
                    outbox,
                    lead=lead,
                    status=change.status,
                    note=change.note,
                    source="pipedrive",
                    crm_record_id=person_id,
                    opportunity_id=event.entity_id,
                )
                result = {"entity": "deal", "lead_id": str(lead.id), "feedback": change.status}
    elif event.entity == "lead" and not deleted:
        lead_person = event.data.get("person_id")
        if lead_person not in (None, ""):
            record = crm.CrmRecord(
                "pipedrive",
                str(lead_person),
                key[:32],
                {"campaign": event.data.get("title"), "source": "pipedrive"},
                {},
            )
            if repository.lead_by_crm_record(
                session=session, provider="pipedrive", record_id=str(lead_person)
            ):
                result = apply_record(session, outbox, record=record, settings=settings)
            else:
                result = {"entity": "lead", "status": "unknown_person"}
    return idempotency.settle(session, claimed, JSONResponse(result))


# ------------------------------------------------------------------ Standard Webhooks


@router.post("/v1/webhooks/standard", summary="Any sender signing with Standard Webhooks")
async def standard(request: Request, session: DbSession, outbox: RequestOutbox) -> Response:
    settings = settings_of(request)
    if not settings.standard_webhooks_secret:
        return _not_enabled("Standard Webhooks")
    body = await request.body()
    msg_id = request.headers.get("webhook-id")
    try:
        verify_standard_webhooks(
            secret=settings.standard_webhooks_secret,
            msg_id=msg_id,
            timestamp=request.headers.get("webhook-timestamp"),
            signatures=request.headers.get("webhook-signature"),
            body=body,
            now_s=int(time.time()),
            tolerance_s=settings.webhook_tolerance_seconds,
        )
    except SignatureError as error:
        return _refuse(error)
    assert msg_id is not None
    return await asyncio.to_thread(
        _standard, session, outbox, body=body, msg_id=msg_id, settings=settings
    )


def _standard(
    session: Session, outbox: Outbox, *, body: bytes, msg_id: str, settings: IngestSettings
) -> Response:
    claimed = idempotency.claim(
        session,
        scope="webhook:standard",
        key=msg_id,
        fingerprint=idempotency.fingerprint(body),
    )
    if isinstance(claimed, Response):
        return claimed
    try:
        payload = _json(body)
        if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
            raise crm.UnreadablePayload('expected {"type": "...", "data": {...}}')
    except crm.UnreadablePayload as error:
        return idempotency.settle(session, claimed, problem(422, "body", str(error)))
    kind = str(payload.get("type") or "lead.created")
    try:
        if kind.startswith(("lead.feedback", "lead.status")):
            feedback = FeedbackIn.model_validate({"source": "webhook", **payload["data"]})
            crm_ref = (
                (feedback.crm_provider, feedback.crm_record_id)
                if feedback.crm_provider and feedback.crm_record_id
                else None
            )
            lead = resolve_lead(
                session, lead_id=feedback.lead_id, email=feedback.email, crm=crm_ref
            )
            record_feedback(
                session,
                outbox,
                lead=lead,
                status=feedback.status,
                rejection_reason=feedback.rejection_reason,
                note=feedback.note,
                source=feedback.source,
                crm_record_id=feedback.crm_record_id,
                occurred_at=feedback.occurred_at,
            )
            answer: dict[str, Any] = {"lead_id": str(lead.id), "feedback": feedback.status}
        else:
            lead_in = LeadIn.model_validate(payload["data"])
            base = lead_in.submission(source="webhook")
            submission = Submission(
                fields=base.fields,
                attributes=base.attributes,
                door="webhook",
                source="webhook",
                touchpoint_type="api",
                reference=msg_id,
            )
            captured = capture(session, outbox, submission=submission, settings=settings)
            answer = {"lead_id": str(captured.lead_id), "status": captured.change}
    except ValidationError as error:
        detail = [
            {"loc": ["body", "data", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]
        return idempotency.settle(session, claimed, JSONResponse({"detail": detail}, 422))
    except Rejected as rejected:
        return idempotency.settle(
            session, claimed, problem(422, f"body.data.{rejected.issues[0].field}", str(rejected))
        )
    except LeadNotFound as error:
        return idempotency.settle(session, claimed, problem(404, "body.data", str(error)))
    return idempotency.settle(session, claimed, JSONResponse(answer))
