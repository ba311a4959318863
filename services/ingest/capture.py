"""Capture: one submission from any door becomes a lead (new or merged), a touchpoint and
a LeadIngestedV1 in the outbox, all in the caller's transaction."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Table, insert, inspect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session

from services.ingest import repository
from services.ingest.domain.company import best_name_match, company_key
from services.ingest.domain.erasure import SuppressionEntry, screen, suppression_digest
from services.ingest.domain.normalize import Issue, Normalization, NormalizedLead, normalize
from services.ingest.domain.submission import Submission
from services.ingest.models import Account, CrmLink, Lead, Suppression
from services.ingest.models import Touchpoint as TouchpointRow
from services.ingest.settings import IngestSettings
from shared.contracts import Consent, LeadIngestedV1
from shared.db.bulk import insert_rows
from shared.db.clauses import dialect_of
from shared.db.rows import new_row, table_of
from shared.ids import new_uuid
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
    """One submission, each look-up a query: raises :class:`Rejected` for one refused."""
    normalized, warnings = _normalized(submission, settings)
    return _capture(
        session,
        outbox,
        _Lookups(session),
        normalized=normalized,
        warnings=warnings,
        submission=submission,
        settings=settings,
        now=now or datetime.now(UTC),
    )


def capture_many(
    session: Session,
    outbox: Outbox,
    *,
    submissions: Sequence[Submission],
    settings: IngestSettings,
    normalized: Sequence[Normalization] | None = None,
) -> list[Captured | Rejected]:
    """Submissions in order, with the same outcome as :func:`capture` one after the other
    (each its own savepoint), for each a :class:`Captured` or the :class:`Rejected` that
    refused it. Faster: the look-ups of the whole batch are a few queries made up front
    and answered from memory as the batch goes, and the rows are written in one flush and
    the events in one insert. Should the flush collide with a concurrent transaction (an
    email or domain it created meanwhile), the batch is done again one by one, each lead in
    its savepoint, where such races are handled. On PostgreSQL batches run one at a time
    (an advisory lock to the commit: side by side, two with leads in common deadlock); one
    that deadlocks with a single submission rolls back and does it again, a few times.

    ``normalized``: each submission's :func:`normalize`, made beforehand (an import's next
    chunk is normalized in another process); without, they are normalized here."""
    if normalized is not None and len(normalized) != len(submissions):
        raise ValueError(f"{len(normalized)} normalizations for {len(submissions)} submissions")
    if not submissions:
        return []
    if any(submission.crm_record is not None for submission in submissions):
        return _one_by_one(session, outbox, submissions=submissions, settings=settings)
    # Batches with leads in common deadlock on PostgreSQL when they run side by side (each
    # updates a lead, then waits for one the other wrote; retried, they deadlock again):
    # one batch at a time, to the commit. Single submissions do not wait for it. Taken
    # after the erasure lock, as an import's chunk takes them, never the other way round.
    screening_prepared(session)
    repository.take_batch_lock(session=session)
    for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
        try:
            with session.begin_nested():
                try:
                    with session.begin_nested(), outbox.buffered(session):
                        return _in_bulk(
                            session,
                            outbox,
                            submissions=submissions,
                            settings=settings,
                            normalized=normalized,
                        )
                except IntegrityError:
                    pass
                return _one_by_one(session, outbox, submissions=submissions, settings=settings)
        except OperationalError as error:
            if not _deadlock(error) or attempt == _DEADLOCK_ATTEMPTS:
                raise
            # Rolled back to the savepoint, this transaction holds none of the batch's
            # locks any more: the other one goes on; then the batch again.
    raise AssertionError("unreachable")


_DEADLOCK_ATTEMPTS = 5


def _deadlock(error: OperationalError) -> bool:
    """PostgreSQL broke a deadlock with a concurrent batch by failing this statement."""
    return getattr(error.orig, "sqlstate", None) == "40P01"


def _one_by_one(
    session: Session,
    outbox: Outbox,
    *,
    submissions: Sequence[Submission],
    settings: IngestSettings,
) -> list[Captured | Rejected]:
    results: list[Captured | Rejected] = []
    for submission in submissions:
        try:
            with session.begin_nested():  # one lead's failure rolls back that lead only
                results.append(capture(session, outbox, submission=submission, settings=settings))
        except Rejected as rejected:
            results.append(rejected)
    return results


def _in_bulk(
    session: Session,
    outbox: Outbox,
    *,
    submissions: Sequence[Submission],
    settings: IngestSettings,
    normalized: Sequence[Normalization] | None,
) -> list[Captured | Rejected]:
    accepted: list[tuple[NormalizedLead, tuple[Issue, ...]] | Rejected] = []
    for index, submission in enumerate(submissions):
        try:
            accepted.append(
                _normalized(submission, settings)
                if normalized is None
                else _accepted(normalized[index])
            )
        except Rejected as rejected:
            accepted.append(rejected)
    leads = [each[0] for each in accepted if not isinstance(each, Rejected)]
    lookups = _Prefetched(session, leads, settings=settings)
    results: list[Captured | Rejected] = []
    for submission, each in zip(submissions, accepted, strict=True):
        if isinstance(each, Rejected):
            results.append(each)
            continue
        try:
            results.append(
                _capture(
                    session,
                    outbox,
                    lookups,
                    normalized=each[0],
                    warnings=each[1],
                    submission=submission,
                    settings=settings,
                    now=datetime.now(UTC),
                )
            )
        except Rejected as rejected:  # refused before anything of it was written
            results.append(rejected)
    lookups.write()
    return results


def _normalized(
    submission: Submission, settings: IngestSettings
) -> tuple[NormalizedLead, tuple[Issue, ...]]:
    return _accepted(
        normalize(submission.fields, submission.attributes, config=settings.normalization())
    )


def _accepted(result: Normalization) -> tuple[NormalizedLead, tuple[Issue, ...]]:
    """The normalized lead and its warnings; raises :class:`Rejected` for its errors."""
    if result.lead is None:
        raise Rejected(result.errors)
    return result.lead, result.warnings


def _capture(
    session: Session,
    outbox: Outbox,
    lookups: _Lookups,
    *,
    normalized: NormalizedLead,
    warnings: tuple[Issue, ...],
    submission: Submission,
    settings: IngestSettings,
    now: datetime,
) -> Captured:
    _screen(lookups, normalized, settings=settings, now=now)
    occurred_at = normalized.occurred_at or now
    # Event time: when the submission happened, never later than its receipt. A backfill,
    # an import of last month's trade show or a late CRM sync carries its own time; the
    # event and a lead it creates are dated by it, so every service downstream sees the
    # lead's history as it happened (scoring grades as of the event's time).
    event_time = min(occurred_at, now)
    lead, merged_on = _find(session, lookups, normalized, submission)
    account = _account(session, lookups, normalized, settings=settings, now=now)
    if lead is None:
        lead = _create(
            session,
            lookups,
            normalized,
            submission,
            account=account,
            now=now,
            created_at=event_time,
        )
        change: Literal["created", "merged"] = "created"
    else:
        change = "merged"
        _merge(lookups, lead, normalized, account=account, now=now)
    lead.touchpoint_count += 1
    if submission.crm_record is not None:
        provider, record_id = submission.crm_record
        lead.crm_ids = {**lead.crm_ids, provider: record_id}
        if repository.crm_link(session=session, provider=provider, record_id=record_id) is None:
            session.add(CrmLink(provider=provider, record_id=record_id, lead_id=lead.id))
    touchpoint: dict[str, Any] = {
        "id": new_uuid(),
        "lead_id": lead.id,
        "type": normalized.touchpoint_type or submission.touchpoint_type,
        "door": submission.door,
        "source": normalized.source or submission.source,
        "campaign": normalized.campaign or submission.campaign,
        "utm": normalized.utm.model_dump(exclude_none=True),
        "reference": submission.reference,
        "occurred_at": occurred_at,
        "received_at": now,
    }
    lookups.add_touchpoint(touchpoint)
    outbox.add(
        session,
        ingested_event(lead, touchpoint, change=change, merged_on=merged_on),
        time=event_time,
    )
    return Captured(
        lead_id=lead.id,
        touchpoint_id=touchpoint["id"],
        change=change,
        merged_on=merged_on if change == "merged" else None,
        warnings=warnings,
    )


class _Lookups:
    """What capture looks up, each a query: one submission at a time, each flushed."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # The leads whose rows this capture has locked and read as they are (repository.hold).
        self.held: set[uuid.UUID] = set()

    def lead_by_email(self, email: str) -> Lead | None:
        lead = repository.lead_by_email(session=self.session, email=email, lock=True)
        if lead is not None:
            self.held.add(lead.id)
        return lead

    def leads_by_phone(self, phone: str) -> Sequence[Lead]:
        return repository.leads_by_phone(session=self.session, phone=phone)

    def account_by_domain(self, domain: str) -> Account | None:
        return repository.account_by_domain(session=self.session, domain=domain)

    def accounts_named_like(self, key_prefix: str) -> Sequence[Account]:
        return repository.accounts_named_like(session=self.session, key_prefix=key_prefix)

    def screening(self) -> bool:
        return screening_prepared(self.session)

    def suppressions(self, digests: Collection[str]) -> Sequence[Suppression]:
        return repository.suppressions(session=self.session, digests=digests)

    def lift(self, erasure_ids: Collection[uuid.UUID]) -> None:
        repository.lift_suppressions(session=self.session, erasure_ids=erasure_ids)

    def hold(self, lead: Lead) -> None:
        """Before merging into ``lead``: its row locked and read as it is now."""
        if lead.id not in self.held:
            repository.hold(session=self.session, lead=lead)
            self.held.add(lead.id)

    def guard(self) -> AbstractContextManager[None]:
        """Around an insert a concurrent transaction may have made first."""
        return _race_guard(self.session)

    def indexed(self, lead: Lead, *, email: str | None, phone: str | None) -> None:
        """``lead`` was created (``email`` and ``phone`` None) or merged (they are what it
        had before)."""

    def account_named(self, account: Account) -> None:
        """``account`` was created or got a name key."""

    def add_account(self, account: Account) -> None:
        """A new account, to be written."""
        self.session.add(account)

    def add_lead(self, lead: Lead) -> None:
        """A new lead, to be written."""
        self.session.add(lead)

    def add_touchpoint(self, values: dict[str, Any]) -> None:
        """After its lead is written (the row refers to it)."""
        self.session.flush()
        self.session.execute(insert(TouchpointRow), [values])


class _Prefetched(_Lookups):
    """The look-ups of a batch: the leads with its emails and phones, the accounts with its
    domains and name prefixes, the suppressions of its people, each read in one query up
    front, then kept up to date in memory with what the batch creates and changes, so each
    answer is the one the query would give at that point."""

    def __init__(
        self, session: Session, leads: Sequence[NormalizedLead], *, settings: IngestSettings
    ) -> None:
        super().__init__(session)
        emails = sorted({lead.email for lead in leads if lead.email})
        phones = sorted({lead.phone for lead in leads if lead.phone})
        domains = sorted({lead.company_domain for lead in leads if lead.company_domain})
        prefixes = sorted(
            {
                company_key(lead.company_name)[:3]
                for lead in leads
                if lead.company_name and not lead.company_domain
            }
            - {""}
        )
        self.by_email: dict[str, Lead] = {}
        self.by_phone: dict[str, list[Lead]] = {phone: [] for phone in phones}
        # Phones with more leads than a look-up returns, of which one left: from then on
        # their look-ups are queries.
        self.truncated: set[str] = set()
        self.stale: set[str] = set()
        self.by_domain: dict[str, Account | None] = dict.fromkeys(domains)
        self.named: dict[str, list[Account]] = {}
        self.suppressed: dict[str, list[Suppression]] = {}
        # New leads stay out of the session: changed as the batch goes on, written at the
        # end in one insert, without the ORM's unit of work (a third of the cost of a row).
        self.created: list[Lead] = []
        # New accounts too. A lead already stored that the batch moves to one of them is in
        # the session: before anything flushes it, they are written (:meth:`_write_accounts`).
        self.new_accounts: list[Account] = []
        self.touchpoints: list[dict[str, Any]] = []
        self.screened = screening_prepared(session)
        with session.no_autoflush:
            # Most submissions are of people and companies not seen before: one cheap
            # statement says so, instead of three reading whole rows (~0.6 ms of a single
            # lead's ~2.3 ms transaction).
            known = repository.known(session=session, emails=emails, phones=phones, domains=domains)
            if known.emails:
                for lead in repository.leads_by_emails(session=session, emails=emails):
                    if lead.email is not None:
                        self.by_email[lead.email] = lead
            if known.phones:
                for lead in repository.leads_by_phones(
                    session=session, phones=phones, limit=repository.PHONE_MATCHES
                ):
                    if lead.phone is not None:
                        self.by_phone[lead.phone].append(lead)
            # Those two read the rows locked (repository.hold): the batch merges into them.
            self.held = {lead.id for lead in self.by_email.values()}
            self.held |= {lead.id for found in self.by_phone.values() for lead in found}
            self.truncated = {
                phone
                for phone, found in self.by_phone.items()
                if len(found) >= repository.PHONE_MATCHES
            }
            if known.domains:
                for account in repository.accounts_by_domains(session=session, domains=domains):
                    self.by_domain[account.domain or ""] = account
            for prefix in prefixes:
                self.named[prefix] = list(
                    repository.accounts_named_like(session=session, key_prefix=prefix)
                )
            if self.screened:
                digests: set[str] = set()
                for each in leads:
                    digests |= set(
                        suppression_digests(settings, email=each.email, phone=each.phone)
                    )
                for entry in repository.suppressions(session=session, digests=digests):
                    self.suppressed.setdefault(entry.digest, []).append(entry)

    def lead_by_email(self, email: str) -> Lead | None:
        return self.by_email.get(email)

    def leads_by_phone(self, phone: str) -> Sequence[Lead]:
        if phone in self.stale or phone not in self.by_phone:
            # The query sees the database (flushed first: the leads the batch changed); the
            # batch's new leads are written at its end.
            self._write_accounts()
            found = [*super().leads_by_phone(phone)]
            found += (lead for lead in self.created if lead.phone == phone)
            return sorted(found, key=_created_at)[: repository.PHONE_MATCHES]
        return self.by_phone[phone][: repository.PHONE_MATCHES]

    def hold(self, lead: Lead) -> None:
        # Read locked up front, or one of the batch's new leads (not written yet).
        if lead.id in self.held or inspect(lead).transient:
            return
        self._write_accounts()  # the statement may flush the session first
        super().hold(lead)

    def account_by_domain(self, domain: str) -> Account | None:
        if domain not in self.by_domain:
            return super().account_by_domain(domain)
        return self.by_domain[domain]

    def accounts_named_like(self, key_prefix: str) -> Sequence[Account]:
        if key_prefix not in self.named:
            return super().accounts_named_like(key_prefix)
        return self.named[key_prefix]

    def screening(self) -> bool:
        return self.screened

    def suppressions(self, digests: Collection[str]) -> Sequence[Suppression]:
        return [entry for digest in digests for entry in self.suppressed.get(digest, ())]

    def lift(self, erasure_ids: Collection[uuid.UUID]) -> None:
        self._write_accounts()  # the statement flushes the session first
        super().lift(erasure_ids)
        for digest, entries in self.suppressed.items():
            self.suppressed[digest] = [e for e in entries if e.erasure_id not in erasure_ids]

    def guard(self) -> AbstractContextManager[None]:
        # A concurrent insert shows in the one flush at the end: capture_many starts over.
        return nullcontext()

    def indexed(self, lead: Lead, *, email: str | None, phone: str | None) -> None:
        if lead.email != email:
            if email is not None:
                self.by_email.pop(email, None)
            if lead.email is not None:
                self.by_email[lead.email] = lead
        if lead.phone != phone:
            if phone is not None and phone in self.by_phone:
                found = self.by_phone[phone]
                if any(other is lead for other in found):
                    found.remove(lead)
                    if phone in self.truncated:
                        self.stale.add(phone)
            if lead.phone is not None and lead.phone in self.by_phone:
                # As the query orders them: by creation time.
                bisect.insort(self.by_phone[lead.phone], lead, key=_created_at)

    def account_named(self, account: Account) -> None:
        if account.domain is not None and account.domain in self.by_domain:
            self.by_domain[account.domain] = account
        key = account.name_key
        if key:
            for prefix, accounts in self.named.items():
                if key.startswith(prefix) and not any(a is account for a in accounts):
                    accounts.append(account)

    def add_account(self, account: Account) -> None:
        self.new_accounts.append(account)

    def add_lead(self, lead: Lead) -> None:
        self.created.append(lead)

    def add_touchpoint(self, values: dict[str, Any]) -> None:
        self.touchpoints.append(values)

    def _write_accounts(self) -> None:
        """The new accounts so far, in one insert (:func:`insert_rows`); from then on like
        any account read, in the session."""
        if not self.new_accounts:
            return
        insert_rows(self.session, _ACCOUNTS, _column_values(self.new_accounts, _ACCOUNTS))
        for account in self.new_accounts:
            make_transient_to_detached(account)
            self.session.add(account)
        self.new_accounts = []

    def write(self) -> None:
        """The batch's new accounts in one insert, the accounts and leads it changed in one
        flush, then its new leads and its touchpoints, each in one insert
        (:func:`insert_rows`). A new lead or account that collides with one a concurrent
        transaction created raises IntegrityError here."""
        self._write_accounts()
        self.session.flush()
        insert_rows(
            self.session,
            _LEADS,
            _column_values(self.created, _LEADS),
        )
        insert_rows(self.session, _TOUCHPOINTS, self.touchpoints)


_ACCOUNTS = table_of(Account)
_LEADS = table_of(Lead)
_TOUCHPOINTS = table_of(TouchpointRow)


def _column_values(rows: Sequence[Account | Lead], table: Table) -> list[dict[str, Any]]:
    """Each row object's values of the table's columns, for :func:`insert_rows`."""
    names = table.c.keys()
    return [{name: row.__dict__[name] for name in names} for row in rows]


def _created_at(lead: Lead) -> datetime:
    return lead.created_at


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
    lookups: _Lookups, normalized: NormalizedLead, *, settings: IngestSettings, now: datetime
) -> None:
    """Refuse an erased person, unless they consented again: then their suppression goes."""
    if not lookups.screening():
        return
    digests = suppression_digests(settings, email=normalized.email, phone=normalized.phone)
    if not digests:
        return
    entries = lookups.suppressions(digests)
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
    if screening.lifted:
        lookups.lift(screening.lifted)


def _find(
    session: Session, lookups: _Lookups, normalized: NormalizedLead, submission: Submission
) -> tuple[Lead | None, Literal["email", "phone"] | None]:
    """Email first; then phone, unless both carry different emails (two people, one
    switchboard); then the CRM's record id. The lead found is held (:meth:`_Lookups.hold`)
    and judged again as it is then: a concurrent capture may have given it an email."""
    if normalized.email:
        lead = lookups.lead_by_email(normalized.email)
        if lead is not None:
            lookups.hold(lead)
            return lead, "email"
    if normalized.phone:
        for lead in lookups.leads_by_phone(normalized.phone):
            if _one_person(lead, normalized):
                lookups.hold(lead)
                if lead.phone == normalized.phone and _one_person(lead, normalized):
                    return lead, "phone"
    if submission.crm_record is not None:
        provider, record_id = submission.crm_record
        lead = repository.lead_by_crm_record(
            session=session, provider=provider, record_id=record_id
        )
        if lead is not None and _one_person(lead, normalized):
            lookups.hold(lead)
            if _one_person(lead, normalized):
                return lead, None
    return None, None


def _one_person(lead: Lead, normalized: NormalizedLead) -> bool:
    """Not two people by their emails: the lead or the submission has none."""
    return lead.email is None or normalized.email is None


def _account(
    session: Session,
    lookups: _Lookups,
    normalized: NormalizedLead,
    *,
    settings: IngestSettings,
    now: datetime,
) -> Account | None:
    name = normalized.company_name
    key = company_key(name) if name else None
    if normalized.company_domain:
        account = lookups.account_by_domain(normalized.company_domain)
        if account is None:
            account = new_row(
                Account,
                id=new_uuid(),
                domain=normalized.company_domain,
                name=name,
                name_key=key,
                created_at=now,
            )
            try:
                with lookups.guard():
                    lookups.add_account(account)
            except IntegrityError:  # created by a concurrent request
                account = repository.account_by_domain(
                    session=session, domain=normalized.company_domain
                )
            if account is not None:
                lookups.account_named(account)
        elif account.name is None and name:
            account.name, account.name_key = name, key
            lookups.account_named(account)
        return account
    if not key:
        return None
    candidates = lookups.accounts_named_like(key[:3])
    found = best_name_match(
        key,
        ((account, account.name_key or "") for account in candidates),
        threshold=settings.company_match_threshold,
    )
    if found is not None:
        return found
    account = new_row(Account, id=new_uuid(), name=name, name_key=key, created_at=now)
    lookups.add_account(account)
    lookups.account_named(account)
    return account


@contextmanager
def _race_guard(session: Session) -> Iterator[None]:
    """A savepoint around an insert a concurrent transaction may have made first. SQLite
    runs one writer at a time (BEGIN IMMEDIATE): nothing can race there, so no savepoint."""
    if dialect_of(session) == "sqlite":
        yield
        session.flush()
        return
    with session.begin_nested():
        yield


def _create(
    session: Session,
    lookups: _Lookups,
    normalized: NormalizedLead,
    submission: Submission,
    *,
    account: Account | None,
    now: datetime,
    created_at: datetime,
) -> Lead:
    lead = new_row(
        Lead,
        id=new_uuid(),
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
        with lookups.guard():
            lookups.add_lead(lead)
    except IntegrityError:
        # The same email was created by a concurrent request a moment ago: merge into it.
        existing = repository.lead_by_email(
            session=session, email=normalized.email or "", lock=True
        )
        if existing is None:
            raise
        _merge(lookups, existing, normalized, account=account, now=now)
        return existing
    lookups.indexed(lead, email=None, phone=None)
    return lead


def _merge(
    lookups: _Lookups,
    lead: Lead,
    normalized: NormalizedLead,
    *,
    account: Account | None,
    now: datetime,
) -> None:
    email, phone = lead.email, lead.phone
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
    lookups.indexed(lead, email=email, phone=phone)


def _consent_json(consent: Consent) -> dict[str, Any]:
    return consent.model_dump(mode="json", exclude_none=True)


def ingested_event(
    lead: Lead,
    touchpoint: Mapping[str, Any],
    *,
    change: Literal["created", "merged"],
    merged_on: Literal["email", "phone"] | None,
) -> LeadIngestedV1:
    """The event of one capture: the lead as the contracts carry it and the touchpoint.
    Validated in one call from plain values: building each nested model first costs a
    Python-level validation per model (~15 µs an event against ~11)."""
    return LeadIngestedV1.model_validate(
        {
            "lead_id": lead.id,
            "change": change,
            "merged_on": merged_on if change == "merged" else None,
            "lead": snapshot_values(lead),
            "touchpoint": touchpoint_values(touchpoint),
            "touchpoint_count": lead.touchpoint_count,
        }
    )


def snapshot_values(lead: Lead) -> dict[str, Any]:
    """The lead as :class:`~shared.contracts.LeadSnapshot` carries it, as plain values."""
    return {
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "phone": lead.phone,
        "title": lead.title,
        "seniority": lead.seniority,
        "department": lead.department,
        "company": {
            "name": lead.company_name,
            "domain": lead.company_domain,
            "account_id": lead.account_id,
            "website": lead.website,
            "industry": lead.industry,
            "vertical": lead.vertical,
            "sic_code": lead.sic_code,
            "naics_code": lead.naics_code,
            "employees": lead.employees,
            "annual_revenue": lead.annual_revenue,
        },
        "country": lead.country,
        "region": lead.region,
        "city": lead.city,
        "postal_code": lead.postal_code,
        "free_mail": lead.free_mail,
        "consent": lead.consent,
        "attributes": lead.attributes,
        "source": lead.source,
        "campaign": lead.campaign,
        "crm_ids": lead.crm_ids,
        "created_at": lead.created_at,
    }


def touchpoint_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A touchpoint row's values as :class:`~shared.contracts.Touchpoint` carries them."""
    return {
        "touchpoint_id": row["id"],
        "type": row["type"],
        "door": row["door"],
        "source": row["source"],
        "campaign": row["campaign"],
        "utm": row["utm"],
        "reference": row["reference"],
        "occurred_at": row["occurred_at"],
    }
