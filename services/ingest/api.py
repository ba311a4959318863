"""The JSON doors: ``POST /v1/leads`` and ``POST /v1/leads:batch``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from services.ingest import idempotency
from services.ingest.auth import ApiKeyRoute
from services.ingest.capture import Captured, Rejected, capture_many
from services.ingest.domain.normalize import Issue, RawValue
from services.ingest.domain.submission import Submission
from services.ingest.settings import IngestSettings
from shared.contracts import AttributeValue
from shared.db.group_commit import GroupCommit
from shared.http import DbSession, RequestOutbox, runtime_of
from shared.outbox import Outbox

Raw = str | int | float | None


class UtmIn(BaseModel):
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None


class ConsentIn(BaseModel):
    email_marketing: bool | str | None = None
    phone_contact: bool | str | None = None
    data_processing: bool | str | None = None
    recorded_at: datetime | str | int | None = None


class LeadIn(BaseModel):
    """One lead. Every field is optional but an email or a phone is required; fields not
    listed here are kept as attributes of the lead."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada.lovelace@analytical-engines.co.uk",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "phone": "+44 20 7946 0958",
                    "title": "VP Engineering",
                    "company": "Analytical Engines Ltd",
                    "country": "UK",
                    "source": "web_form",
                    "campaign": "q4-webinar",
                    "touchpoint_type": "demo_request",
                    "utm": {"source": "linkedin", "medium": "paid_social"},
                    "consent": {"email_marketing": True},
                    "how_did_you_hear": "a colleague",
                }
            ]
        },
    )

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    phone: Raw = None
    mobile: Raw = None
    title: str | None = None
    company: str | None = None
    website: str | None = None
    industry: str | None = None
    sic_code: Raw = None
    naics_code: Raw = None
    employees: Raw = None
    annual_revenue: Raw = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    postal_code: Raw = None
    source: str | None = Field(default=None, description="web_form, directory, partner ...")
    campaign: str | None = None
    touchpoint_type: str | None = Field(
        default=None, description="demo_request, content_download ... (default: api)"
    )
    occurred_at: datetime | int | str | None = None
    utm: UtmIn | None = None
    consent: ConsentIn | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)

    def submission(
        self, *, door: Literal["api", "form"] = "api", source: str = "api"
    ) -> Submission:
        data = self.model_dump(exclude={"utm", "consent", "attributes"}, exclude_none=True)
        extra = dict(self.model_extra or {})
        for key in list(data):
            if key in extra:
                data.pop(key)
        fields: dict[str, RawValue] = {
            key: (value.isoformat() if isinstance(value, datetime) else value)
            for key, value in data.items()
        }
        if self.utm is not None:
            for key, value in self.utm.model_dump(exclude_none=True).items():
                fields[f"utm_{key}"] = value
        if self.consent is not None:
            consent = self.consent.model_dump(exclude_none=True)
            for key, target in (
                ("email_marketing", "consent_email"),
                ("phone_contact", "consent_phone"),
                ("data_processing", "consent_data_processing"),
                ("recorded_at", "consent_recorded_at"),
            ):
                if key in consent:
                    value = consent[key]
                    fields[target] = value.isoformat() if isinstance(value, datetime) else value
        attributes: dict[str, RawValue] = {**self.attributes}
        for key, value in extra.items():
            attributes[key] = value if _scalar(value) else str(value)
        return Submission(
            fields=fields,
            attributes=attributes,
            door=door,
            source=source,
            touchpoint_type="api" if door == "api" else "form_submission",
        )


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class IssueOut(BaseModel):
    field: str
    reason: str


class LeadAccepted(BaseModel):
    lead_id: UUID
    touchpoint_id: UUID
    status: Literal["created", "merged"]
    merged_on: Literal["email", "phone"] | None = None
    warnings: list[IssueOut] = Field(default_factory=list)


class BatchIn(BaseModel):
    leads: list[dict[str, Any]] = Field(description="Up to 1,000 leads, each as POST /v1/leads")


class BatchItem(BaseModel):
    index: int
    status: Literal["created", "merged", "rejected"]
    lead_id: UUID | None = None
    touchpoint_id: UUID | None = None
    merged_on: Literal["email", "phone"] | None = None
    errors: list[IssueOut] = Field(default_factory=list)
    warnings: list[IssueOut] = Field(default_factory=list)


class BatchAccepted(BaseModel):
    created: int
    merged: int
    rejected: int
    results: list[BatchItem]


def settings_of(request: Request) -> IngestSettings:
    settings = runtime_of(request).settings
    assert isinstance(settings, IngestSettings)
    return settings


def issues_out(issues: tuple[Issue, ...]) -> list[IssueOut]:
    return [IssueOut(field=issue.field, reason=issue.reason) for issue in issues]


def rejection(issues: tuple[Issue, ...], *, prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    """A 422 in FastAPI's validation shape: each refused field and why."""
    detail = [
        {"loc": [*prefix, issue.field], "msg": issue.reason, "type": "value_error"}
        for issue in issues
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def accepted(captured: Captured) -> LeadAccepted:
    return LeadAccepted(
        lead_id=captured.lead_id,
        touchpoint_id=captured.touchpoint_id,
        status=captured.change,
        merged_on=captured.merged_on,
        warnings=issues_out(captured.warnings),
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retries with the same key get the first answer and create nothing new",
    ),
]

router = APIRouter(route_class=ApiKeyRoute, tags=["leads"])


@router.post(
    "/v1/leads",
    status_code=202,
    response_model=LeadAccepted,
    responses={401: {}, 409: {}, 422: {}},
    summary="Submit one lead",
)
async def post_lead(
    request: Request, body: LeadIn, idempotency_key: IdempotencyKey = None
) -> Response:
    key = None
    if idempotency_key:
        key = idempotency.Key(
            scope=f"api:{request.state.api_key_id}",
            key=idempotency_key,
            fingerprint=idempotency.fingerprint("POST /v1/leads", body.model_dump_json()),
        )
    return await lead_group(request).submit(ApiLead(body.submission(), key))


class LeadRequest(Protocol):
    """A request for one lead, as the group commit writes it (the JSON door, a web form)."""

    @property
    def key(self) -> idempotency.Key | None: ...

    def submission(self, session: Session) -> Submission | Response:
        """The lead to capture, or the answer to a request that has none (a form that does
        not exist)."""

    def rejected(self, issues: tuple[Issue, ...]) -> Response:
        """The answer when capture refuses the lead."""


@dataclass(frozen=True)
class ApiLead:
    lead: Submission
    key: idempotency.Key | None = None

    def submission(self, session: Session) -> Submission:
        return self.lead

    def rejected(self, issues: tuple[Issue, ...]) -> Response:
        return rejection(issues)


def lead_group(request: Request) -> GroupCommit[LeadRequest, Response]:
    """The process's group commit of single-lead requests, made on first use."""
    runtime = runtime_of(request)
    group: GroupCommit[LeadRequest, Response] | None = runtime.state.get("lead_group")
    if group is None:
        settings = settings_of(request)

        def work(session: Session, requests: Sequence[LeadRequest]) -> list[Response]:
            return capture_requests(session, runtime.outbox, requests, settings=settings)

        group = GroupCommit(
            runtime.db, work, max_group=settings.lead_group_max, on_committed=runtime.relay.notify
        )
        runtime.state["lead_group"] = group
    return group


def capture_requests(
    session: Session, outbox: Outbox, requests: Sequence[LeadRequest], *, settings: IngestSettings
) -> list[Response]:
    """Single-lead requests in one transaction, each answered as if it had been alone: its
    idempotency key claimed (a key already used is answered from the first request), the
    leads captured together (:func:`capture_many`), and each answer recorded on its key."""
    answers: list[Response | None] = [None] * len(requests)
    claims: dict[int, idempotency.Claim] = {}
    taken: list[tuple[int, Submission]] = []
    for index, each in enumerate(requests):
        if each.key is not None:
            claimed = idempotency.claim(
                session, scope=each.key.scope, key=each.key.key, fingerprint=each.key.fingerprint
            )
            if isinstance(claimed, Response):
                answers[index] = claimed
                continue
            claims[index] = claimed
        submission = each.submission(session)
        if isinstance(submission, Response):
            answers[index] = idempotency.settle(session, claims.get(index), submission)
        else:
            taken.append((index, submission))
    outcomes = capture_many(
        session, outbox, submissions=[submission for _, submission in taken], settings=settings
    )
    for (index, _), outcome in zip(taken, outcomes, strict=True):
        if isinstance(outcome, Rejected):
            response = requests[index].rejected(outcome.issues)
        else:
            response = JSONResponse(accepted(outcome).model_dump(mode="json"), status_code=202)
        answers[index] = idempotency.settle(session, claims.get(index), response)
    return [answer for answer in answers if answer is not None]


@router.post(
    "/v1/leads:batch",
    status_code=202,
    response_model=BatchAccepted,
    responses={401: {}, 409: {}, 422: {}},
    summary="Submit up to 1,000 leads; a result per lead",
)
def post_leads_batch(
    request: Request,
    body: BatchIn,
    session: DbSession,
    outbox: RequestOutbox,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    settings = settings_of(request)
    if len(body.leads) > settings.max_batch:
        found = len(body.leads)
        return rejection((Issue("leads", f"at most {settings.max_batch} leads, got {found}"),))
    if not body.leads:
        return rejection((Issue("leads", "no leads in the batch"),))
    claim = None
    if idempotency_key:
        claimed = idempotency.claim(
            session,
            scope=f"api:{request.state.api_key_id}",
            key=idempotency_key,
            fingerprint=idempotency.fingerprint("POST /v1/leads:batch", body.model_dump_json()),
        )
        if isinstance(claimed, Response):
            return claimed
        claim = claimed
    results = _batch(session, outbox, items=body.leads, settings=settings)
    answer = BatchAccepted(
        created=sum(r.status == "created" for r in results),
        merged=sum(r.status == "merged" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=results,
    )
    response = JSONResponse(answer.model_dump(mode="json"), status_code=202)
    return idempotency.settle(session, claim, response)


def _batch(
    session: Session, outbox: Outbox, *, items: list[dict[str, Any]], settings: IngestSettings
) -> list[BatchItem]:
    """Each item as ``POST /v1/leads`` would take it, in order; the valid ones captured
    together (:func:`capture_many`: as one by one, in fewer statements)."""
    results: list[BatchItem | None] = []
    submissions: list[tuple[int, Submission]] = []
    for index, item in enumerate(items):
        try:
            lead = LeadIn.model_validate(item)
        except ValidationError as error:
            errors = [
                IssueOut(field=".".join(str(p) for p in e["loc"]), reason=e["msg"])
                for e in error.errors()
            ]
            results.append(BatchItem(index=index, status="rejected", errors=errors))
            continue
        results.append(None)
        submissions.append((index, lead.submission()))
    outcomes = capture_many(
        session, outbox, submissions=[each for _, each in submissions], settings=settings
    )
    for (index, _), outcome in zip(submissions, outcomes, strict=True):
        if isinstance(outcome, Rejected):
            results[index] = BatchItem(
                index=index, status="rejected", errors=issues_out(outcome.issues)
            )
        else:
            results[index] = BatchItem(
                index=index,
                status=outcome.change,
                lead_id=outcome.lead_id,
                touchpoint_id=outcome.touchpoint_id,
                merged_on=outcome.merged_on,
                warnings=issues_out(outcome.warnings),
            )
    return [result for result in results if result is not None]
