"""Erasure on request (GDPR Art. 17, CCPA 1798.105): ``DELETE /v1/people/{email}``.

One transaction does all of ingest's part:

* the person's leads: the lead of the email, and the leads with its phone and no email
  (deduplication would have merged those into it: the same person). Each keeps its id, its
  counts, its company, country, region, seniority, department, source and campaign, and
  ``erased_at``; email, phone, names, title, city, postal code, attributes, consent and CRM
  ids are cleared;
* what else holds the person: their touchpoints' free-text UTM term and content, their CRM
  links (deleted) and the CRM record ids of their feedback, the rows of import files still
  to be processed that are theirs (blanked in place), the issues reported for those rows,
  the answers stored for idempotent retries that mention them;
* one ``leads.erased`` per lead, through the outbox; the published outbox rows of the leads
  (whole snapshots) are deleted now, the others once they are published;
* a suppression entry per identifier: a keyed hash, never the clear value, that refuses the
  person at the next submission until they consent again.

Asking again is harmless: the answer is the first erasure's, and nothing is done twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from services.ingest import repository
from services.ingest.api import settings_of
from services.ingest.auth import ApiKeyRoute
from services.ingest.capture import forget_screening, suppression_digests
from services.ingest.domain.email import InvalidEmail, normalize_email
from services.ingest.domain.erasure import rows_of_person, scrub_utm
from services.ingest.imports import blank_rows
from services.ingest.models import ERASURES, Lead, Suppression, Touchpoint
from services.ingest.settings import IngestSettings
from shared.contracts import LeadErasedV1, Regulation
from shared.http import DbSession, RequestOutbox, problem
from shared.ids import new_uuid
from shared.outbox import Outbox

# Lead columns that are the person; the rest (company, country, region, seniority, department,
# source, campaign, counts, times) are anonymous facts and stay.
PERSONAL_COLUMNS = ("email", "phone", "first_name", "last_name", "title", "city", "postal_code")
ERASED_REASON = "(erased on request)"


class PersonNotFound(LookupError):
    """No lead has this email."""


@dataclass(frozen=True)
class Erasure:
    erasure_id: uuid.UUID
    lead_ids: tuple[uuid.UUID, ...]
    regulation: Regulation
    erased_at: datetime
    repeated: bool = False


def erase_person(
    session: Session,
    outbox: Outbox,
    *,
    email: str,
    regulation: Regulation,
    settings: IngestSettings,
    now: datetime | None = None,
) -> Erasure:
    """Erase the person of a normalized email; :class:`PersonNotFound` if no lead has it."""
    repository.take_erasure_lock(session=session)  # the captures in flight finish first
    forget_screening(session)
    now = now or datetime.now(UTC)
    email_digest = next(iter(suppression_digests(settings, email=email, phone=None)))
    for entry in repository.suppressions(session=session, digests=[email_digest]):
        return Erasure(
            erasure_id=entry.erasure_id,
            lead_ids=tuple(uuid.UUID(lead_id) for lead_id in entry.lead_ids),
            regulation=entry.regulation,  # type: ignore[arg-type]
            erased_at=entry.erased_at,
            repeated=True,
        )
    leads = repository.leads_of_person(session=session, email=email)
    if not leads:
        raise PersonNotFound(email)
    erasure = Erasure(
        erasure_id=new_uuid(),
        lead_ids=tuple(lead.id for lead in leads),
        regulation=regulation,
        erased_at=now,
    )
    lead_ids = list(erasure.lead_ids)
    phones = sorted({lead.phone for lead in leads if lead.phone})
    touchpoints = repository.touchpoints_of(session=session, lead_ids=lead_ids)
    _erase_import_rows(session, touchpoints, email=email, phones=phones, settings=settings)
    for touchpoint in touchpoints:
        touchpoint.utm = scrub_utm(touchpoint.utm)
    for feedback in repository.feedback_of_leads(session=session, lead_ids=lead_ids):
        feedback.crm_record_id = None
    repository.delete_crm_links(session=session, lead_ids=lead_ids)
    repository.delete_idempotent_answers_mentioning(
        session=session, needles=[*(str(lead_id) for lead_id in lead_ids), email, *phones]
    )
    for lead in leads:
        _anonymise(lead, now=now)
    _suppress(session, erasure, email=email, phones=phones, settings=settings)
    for lead_id in lead_ids:
        outbox.add(
            session,
            LeadErasedV1(
                lead_id=lead_id,
                erasure_id=erasure.erasure_id,
                regulation=regulation,
                erased_at=now,
            ),
            time=now,
        )
        ERASURES.remember(session, lead_id=lead_id, erased_at=now)
    session.flush()
    ERASURES.purge_outbox(session, lead_ids=lead_ids, now=now)
    return erasure


def _anonymise(lead: Lead, *, now: datetime) -> None:
    for name in PERSONAL_COLUMNS:
        setattr(lead, name, None)
    lead.attributes = {}
    lead.consent = {}
    lead.crm_ids = {}
    lead.erased_at = now
    lead.updated_at = now


def _suppress(
    session: Session,
    erasure: Erasure,
    *,
    email: str,
    phones: list[str],
    settings: IngestSettings,
) -> None:
    digests = suppression_digests(settings, email=email, phone=None)
    for phone in phones:
        digests.update(suppression_digests(settings, email=None, phone=phone))
    for digest, kind in digests.items():
        session.add(
            Suppression(
                digest=digest,
                erasure_id=erasure.erasure_id,
                kind=kind,
                lead_ids=[str(lead_id) for lead_id in erasure.lead_ids],
                regulation=erasure.regulation,
                erased_at=erasure.erased_at,
            )
        )


def _erase_import_rows(
    session: Session,
    touchpoints: Sequence[Touchpoint],
    *,
    email: str,
    phones: list[str],
    settings: IngestSettings,
) -> None:
    """Blank the person's rows in the files of imports still to be processed (a finished
    import keeps no file), and the reasons of the issues reported for their rows."""
    referenced: dict[uuid.UUID, set[int]] = {}
    for touchpoint in touchpoints:
        where = _import_row(touchpoint)
        if where is not None:
            referenced.setdefault(where[0], set()).add(where[1])
    rows_by_import = {import_id: set(rows) for import_id, rows in referenced.items()}
    for job in repository.unfinished_imports(
        session=session, ids=list(referenced), containing=email
    ):
        rows = rows_of_person(
            job.content,
            job.delimiter or ",",
            email=email,
            phones=phones,
            referenced=referenced.get(job.id, set()),
            config=settings.normalization(),
        )
        if rows:
            blank_rows(job, rows)
            rows_by_import.setdefault(job.id, set()).update(rows)
    for import_id, rows in rows_by_import.items():
        for issue in repository.import_issues_of_rows(
            session=session, import_id=import_id, rows=sorted(rows)
        ):
            issue.reason = ERASED_REASON


def _import_row(touchpoint: Touchpoint) -> tuple[uuid.UUID, int] | None:
    """The import and row a touchpoint was captured from (its reference ``<id>#<row>``)."""
    if touchpoint.door != "import" or not touchpoint.reference:
        return None
    import_id, _, row = touchpoint.reference.partition("#")
    try:
        return uuid.UUID(import_id), int(row)
    except ValueError:
        return None


# ---------------------------------------------------------------- HTTP


class ErasureOut(BaseModel):
    erasure_id: uuid.UUID = Field(description="The same when the request is repeated")
    status: Literal["erased", "already_erased"]
    lead_ids: list[uuid.UUID] = Field(description="Every lead of the person, each erased")
    regulation: Regulation
    erased_at: datetime


router = APIRouter(route_class=ApiKeyRoute, tags=["erasure"])


@router.delete(
    "/v1/people/{email}",
    response_model=ErasureOut,
    responses={401: {}, 404: {}, 422: {}},
    summary="Erase a person (right to erasure): their leads everywhere, by leads.erased",
)
def delete_person(
    email: str,
    request: Request,
    session: DbSession,
    outbox: RequestOutbox,
    regulation: Annotated[
        Regulation, Query(description="The law invoked: gdpr (Art. 17), ccpa (1798.105), other")
    ] = "gdpr",
) -> Response:
    try:
        address = normalize_email(email).address
    except InvalidEmail as error:
        return problem(422, "path.email", str(error))
    try:
        erasure = erase_person(
            session, outbox, email=address, regulation=regulation, settings=settings_of(request)
        )
    except PersonNotFound:
        return problem(404, "path.email", "no lead has this email")
    answer = ErasureOut(
        erasure_id=erasure.erasure_id,
        status="already_erased" if erasure.repeated else "erased",
        lead_ids=list(erasure.lead_ids),
        regulation=erasure.regulation,
        erased_at=erasure.erased_at,
    )
    return JSONResponse(answer.model_dump(mode="json"))
