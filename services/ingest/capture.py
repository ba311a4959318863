"""Capture: one submission from any door becomes a lead (new or merged), a touchpoint and
a LeadIngestedV1 in the outbox, all in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.ingest import repository
from services.ingest.domain.company import best_name_match, company_key
from services.ingest.domain.erasure import SuppressionEntry, screen, suppression_digest
from services.ingest.domain.normalize import Issue, NormalizedLead, normalize
from services.ingest.domain.submission import Submission
from services.ingest.models import Account, CrmLink, Lead
from services.ingest.models import Touchpoint as TouchpointRow
from services.ingest.settings import IngestSettings
from shared.contracts import (
    CompanySnapshot,
    Consent,
    LeadIngestedV1,
    LeadSnapshot,
    Touchpoint,
    Utm,
)
from shared.outbox import Outbox


class Rejected(ValueError):
    """The submission cannot be accepted: the issues say which field and why."""

    def __init__(self, issues: tuple[Issue, ...]) -> None:
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues


class Suppressed(Rejected):
    """The person was erased on request and did not consent again."""


@dataclass(frozen=True)
class Captured:
    lead_id: uuid.UUID
    touchpoint_id: uuid.UUID
    change: Literal["created", "merged"]
    merged_on: Literal["email", "phone"] | None
    warnings: tuple[Issue, ...]


# Lead columns a later submission may update (latest non-empty value wins).
_UPDATABLE = (
    "phone", "first_name", "last_name", "title", "seniority", "department", "company_name",
    "company_domain", "website", "industry", "vertical", "sic_code", "naics_code", "employees",
    "annual_revenue", "country", "region", "city", "postal_code",
)  # fmt: skip


def capture(
    session: Session,
    outbox: Outbox,
    *,
    submission: Submission,
    settings: IngestSettings,
    now: datetime | None = None,
) -> Captured:
    now = now or datetime.now(UTC)
    result = normalize(submission.fields, submission.attributes, config=settings.normalization())
    if result.lead is None:
        raise Rejected(result.errors)
    normalized = result.lead
    _screen(session, normalized, settings=settings, now=now)
    occurred_at = normalized.occurred_at or now
    # Event time: when the submission happened, never later than its receipt. A backfill,
    # an import of last month's trade show or a late CRM sync carries its own time; the
    # event and a lead it creates are dated by it, so every service downstream sees the
    # lead's history as it happened (scoring grades as of the event's time).
    event_time = min(occurred_at, now)
    lead, merged_on = _find(session, normalized, submission)
    account = _account(session, normalized, settings=settings, now=now)
    if lead is None:
        lead = _create(
            session, normalized, submission, account=account, now=now, created_at=event_time
        )
        change: Literal["created", "merged"] = "created"
    else:
        change = "merged"
        _merge(lead, normalized, account=account, now=now)
    lead.touchpoint_count += 1
    if submission.crm_record is not None:
        provider, record_id = submission.crm_record
        lead.crm_ids = {**lead.crm_ids, provider: record_id}
        if repository.crm_link(session=session, provider=provider, record_id=record_id) is None:
            session.add(CrmLink(provider=provider, record_id=record_id, lead_id=lead.id))
    touchpoint = TouchpointRow(
        id=uuid.uuid4(),
        lead_id=lead.id,
        type=normalized.touchpoint_type or submission.touchpoint_type,
        door=submission.door,
        source=normalized.source or submission.source,
        campaign=normalized.campaign or submission.campaign,
        utm=normalized.utm.model_dump(exclude_none=True),
        reference=submission.reference,
        occurred_at=occurred_at,
        received_at=now,
    )
    session.add(touchpoint)
    session.flush()
    outbox.add(
        session,
        LeadIngestedV1(
            lead_id=lead.id,
            change=change,
            merged_on=merged_on if change == "merged" else None,
            lead=snapshot(lead),
            touchpoint=touchpoint_contract(touchpoint),
            touchpoint_count=lead.touchpoint_count,
        ),
        time=event_time,
    )
    return Captured(
        lead_id=lead.id,
        touchpoint_id=touchpoint.id,
        change=change,
        merged_on=merged_on if change == "merged" else None,
        warnings=result.warnings,
    )


def suppression_digests(
    settings: IngestSettings, *, email: str | None, phone: str | None
) -> dict[str, Literal["email", "phone"]]:
    key = settings.suppression_key.get_secret_value().encode()
    digests: dict[str, Literal["email", "phone"]] = {}
    if email:
        digests[suppression_digest(key, "email", email)] = "email"
    if phone:
        digests[suppression_digest(key, "phone", phone)] = "phone"
    return digests


_SCREENING = "ingest.screening"


def screening_prepared(session: Session) -> bool:
    """Once per transaction: hold the erasure lock shared (an erasure then waits for this
    transaction, and one under way is waited for), and look whether anyone is suppressed at
    all; when no one is, no submission needs a look-up."""
    transaction = session.get_transaction()
    cached = session.info.get(_SCREENING)
    if cached is not None and cached[0] is transaction:
        return bool(cached[1])
    repository.share_erasure_lock(session=session)
    anyone = repository.any_suppression(session=session)
    session.info[_SCREENING] = (transaction, anyone)
    return anyone


def forget_screening(session: Session) -> None:
    session.info.pop(_SCREENING, None)


def _screen(
    session: Session, normalized: NormalizedLead, *, settings: IngestSettings, now: datetime
) -> None:
    """Refuse an erased person, unless they consented again: then their suppression goes."""
    if not screening_prepared(session):
        return
    digests = suppression_digests(settings, email=normalized.email, phone=normalized.phone)
    if not digests:
        return
    entries = repository.suppressions(session=session, digests=digests)
    if not entries:
        return
    screening = screen(
        [SuppressionEntry(e.erasure_id, digests[e.digest], e.erased_at) for e in entries],
        has_email=normalized.email is not None,
        consent=normalized.consent,
        now=now,
    )
    if screening.refused is not None:
        raise Suppressed((screening.refused,))
    repository.lift_suppressions(session=session, erasure_ids=screening.lifted)


def _find(
    session: Session, normalized: NormalizedLead, submission: Submission
) -> tuple[Lead | None, Literal["email", "phone"] | None]:
    """Email first; then phone, unless both carry different emails (two people, one
    switchboard); then the CRM's record id."""
    if normalized.email:
        lead = repository.lead_by_email(session=session, email=normalized.email)
        if lead is not None:
            return lead, "email"
    if normalized.phone:
        for lead in repository.leads_by_phone(session=session, phone=normalized.phone):
            if lead.email is None or normalized.email is None:
                return lead, "phone"
    if submission.crm_record is not None:
        provider, record_id = submission.crm_record
        lead = repository.lead_by_crm_record(
            session=session, provider=provider, record_id=record_id
        )
        if lead is not None and (normalized.email is None or lead.email is None):
            return lead, None
    return None, None


def _account(
    session: Session, normalized: NormalizedLead, *, settings: IngestSettings, now: datetime
) -> Account | None:
    name = normalized.company_name
    key = company_key(name) if name else None
    if normalized.company_domain:
        account = repository.account_by_domain(session=session, domain=normalized.company_domain)
        if account is None:
            account = Account(
                id=uuid.uuid4(),
                domain=normalized.company_domain,
                name=name,
                name_key=key,
                created_at=now,
            )
            try:
                with _race_guard(session):
                    session.add(account)
            except IntegrityError:  # created by a concurrent request
                account = repository.account_by_domain(
                    session=session, domain=normalized.company_domain
                )
        elif account.name is None and name:
            account.name, account.name_key = name, key
        return account
    if not key:
        return None
    candidates = repository.accounts_named_like(session=session, key_prefix=key[:3])
    found = best_name_match(
        key,
        ((account, account.name_key or "") for account in candidates),
        threshold=settings.company_match_threshold,
    )
    if found is not None:
        return found
    account = Account(id=uuid.uuid4(), name=name, name_key=key, created_at=now)
    session.add(account)
    return account


@contextmanager
def _race_guard(session: Session) -> Iterator[None]:
    """A savepoint around an insert a concurrent transaction may have made first. SQLite
    runs one writer at a time (BEGIN IMMEDIATE): nothing can race there, so no savepoint."""
    if session.get_bind().dialect.name == "sqlite":
        yield
        session.flush()
        return
    with session.begin_nested():
        yield


def _create(
    session: Session,
    normalized: NormalizedLead,
    submission: Submission,
    *,
    account: Account | None,
    now: datetime,
    created_at: datetime,
) -> Lead:
    lead = Lead(
        id=uuid.uuid4(),
        email=normalized.email,
        free_mail=normalized.free_mail,
        account_id=account.id if account else None,
        attributes=dict(normalized.attributes),
        consent=_consent_json(normalized.consent),
        source=normalized.source or submission.source,
        campaign=normalized.campaign or submission.campaign,
        touchpoint_count=0,
        created_at=created_at,
        updated_at=now,
        **{name: getattr(normalized, name) for name in _UPDATABLE},
    )
    try:
        with _race_guard(session):
            session.add(lead)
    except IntegrityError:
        # The same email was created by a concurrent request a moment ago: merge into it.
        existing = repository.lead_by_email(session=session, email=normalized.email or "")
        if existing is None:
            raise
        _merge(existing, normalized, account=account, now=now)
        return existing
    return lead


def _merge(
    lead: Lead, normalized: NormalizedLead, *, account: Account | None, now: datetime
) -> None:
    for name in _UPDATABLE:
        value = getattr(normalized, name)
        if value is not None:
            setattr(lead, name, value)
    if lead.email is None and normalized.email:
        lead.email, lead.free_mail = normalized.email, normalized.free_mail
    if account is not None:
        lead.account_id = account.id
    lead.attributes = {**lead.attributes, **normalized.attributes}
    lead.consent = {**lead.consent, **_consent_json(normalized.consent)}
    lead.source = lead.source or normalized.source
    lead.campaign = lead.campaign or normalized.campaign
    lead.updated_at = now


def _consent_json(consent: Consent) -> dict[str, Any]:
    return consent.model_dump(mode="json", exclude_none=True)


def snapshot(lead: Lead) -> LeadSnapshot:
    """The lead as the contracts carry it."""
    return LeadSnapshot(
        email=lead.email,
        first_name=lead.first_name,
        last_name=lead.last_name,
        phone=lead.phone,
        title=lead.title,
        seniority=lead.seniority,
        department=lead.department,
        company=CompanySnapshot(
            name=lead.company_name,
            domain=lead.company_domain,
            account_id=lead.account_id,
            website=lead.website,
            industry=lead.industry,
            vertical=lead.vertical,
            sic_code=lead.sic_code,
            naics_code=lead.naics_code,
            employees=lead.employees,
            annual_revenue=lead.annual_revenue,
        ),
        country=lead.country,
        region=lead.region,
        city=lead.city,
        postal_code=lead.postal_code,
        free_mail=lead.free_mail,
        consent=Consent.model_validate(lead.consent),
        attributes=lead.attributes,
        source=lead.source,
        campaign=lead.campaign,
        crm_ids=lead.crm_ids,
        created_at=lead.created_at,
    )


def touchpoint_contract(row: TouchpointRow) -> Touchpoint:
    return Touchpoint(
        touchpoint_id=row.id,
        type=row.type,
        door=row.door,
        source=row.source,
        campaign=row.campaign,
        utm=Utm.model_validate(row.utm),
        reference=row.reference,
        occurred_at=row.occurred_at,
    )
