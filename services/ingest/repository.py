"""Queries of the ingest service. Keyword-only arguments; nothing here commits."""

from __future__ import annotations

import functools
import uuid
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, String, bindparam, delete, func, or_, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, QueryableAttribute, aliased, defer
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import Exists, LateralFromClause, TableValuedAlias
from sqlmodel import Session, col

from services.ingest.models import (
    Account,
    ApiKey,
    CrmLink,
    Feedback,
    Form,
    IdempotentRequest,
    Import,
    ImportIssue,
    Lead,
    Suppression,
    Touchpoint,
)
from shared.db.clauses import among_parameter, dialect_of
from shared.db.locks import hold_transaction_lock


def lead_by_id(*, session: Session, lead_id: uuid.UUID) -> Lead | None:
    return session.get(Lead, lead_id)


def lead_by_email(*, session: Session, email: str, lock: bool = False) -> Lead | None:
    """``lock``: the row is locked to the commit and read as it is then (see :func:`hold`)."""
    statement = select(Lead).where(col(Lead.email) == email)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.execute(statement).scalar_one_or_none()


def hold(*, session: Session, lead: Lead) -> None:
    """Lock the lead's row to the commit and read it again. Capture merges into a lead it
    holds: a concurrent capture merging into it has committed, or waits for this one, so
    neither writes its merge over the other's (a count, consent, attributes) with the lead
    as it read it before. SQLite writes one transaction at a time: nothing to wait for."""
    if dialect_of(session) == "postgresql":
        session.refresh(lead, with_for_update=True)


# The leads of one phone number deduplication looks at: the oldest.
PHONE_MATCHES = 20
# Values in one IN (...) of a look-up for a batch.
_CHUNK = 500


# The statements each capture runs, built once per dialect (shared.db.clauses.among_parameter
# says why).
_ANY_SUPPRESSION = select(col(Suppression.digest)).limit(1)


def _wanted(parameter: str) -> TableValuedAlias:
    """The values of the array ``parameter`` as rows of a column ``value`` (PostgreSQL)."""
    return (
        func.unnest(bindparam(parameter, type_=ARRAY(String)))
        .table_valued("value")
        .render_derived(name=f"wanted_{parameter}")
    )


# PostgreSQL's look-ups of a batch's values read the column's index a value at a time: a
# lateral subquery with a limit is planned for one value. Planned as one ``column =
# ANY(...)``, a look-up read the whole table when the table had no statistics yet, as in a
# first import before autovacuum analyzed it (the planner then expects each value to match
# a fixed share of the rows): ~9 ms a chunk of emails at 50,000 leads, growing with the
# table; an EXISTS of 500 values none of which is there, ~45 ms at 100,000 leads.


def _leads_each_looked_up(
    column: Mapped[Any], parameter: str, limit: int | BindParameter[Any]
) -> tuple[LateralFromClause, Select[Any]]:
    """PostgreSQL: the leads whose ``column`` is each of the values of the array
    ``parameter``, at most ``limit`` each, oldest first, their rows locked as :func:`hold`
    locks them (a batch merges into them)."""
    wanted = _wanted(parameter)
    found = (
        select(Lead)
        .where(column == wanted.c.value)
        .order_by(col(Lead.created_at))
        .limit(limit)
        .with_for_update()
        .lateral("found")
    )
    statement = select(aliased(Lead, found)).select_from(wanted).join(found, true())
    return found, statement.execution_options(populate_existing=True)


def _any_is(dialect: str, column: Mapped[Any], parameter: str, *, each: bool) -> Exists:
    """Whether a row's ``column`` is one of the values of ``parameter``. ``each``: on
    PostgreSQL, by probing the index a value at a time. Every single submission asks this
    for one value, which the plain form has planned as an index probe with or without
    statistics, for ~10-40 µs less a statement."""
    if not each or dialect != "postgresql":
        return select(column).where(among_parameter(dialect, column, parameter)).exists()
    wanted = _wanted(parameter)
    found = select(column).where(column == wanted.c.value).limit(1).lateral("found")
    return select(wanted.c.value).select_from(wanted).join(found, true()).exists()


@functools.cache
def _leads_by_emails(dialect: str) -> Select[Any]:
    if dialect == "postgresql":
        return _leads_each_looked_up(col(Lead.email), "emails", 1)[1]
    return select(Lead).where(among_parameter(dialect, col(Lead.email), "emails"))


@functools.cache
def _leads_by_phones(dialect: str) -> Select[Any]:
    if dialect == "postgresql":
        # Ranked whole (the phones in one ANY, then joined back by id), PostgreSQL also
        # hashed the ranked ids and read every lead to probe them, with statistics too,
        # for as long as it costed that below 500 index probes: at 100,000 leads ~20 ms a
        # chunk against ~2.4 ms (at a million it probed the index).
        found, statement = _leads_each_looked_up(col(Lead.phone), "phones", bindparam("limit"))
        return statement.order_by(found.c.phone, found.c.created_at)
    ranked = (
        select(
            Lead,
            func.row_number()
            .over(partition_by=col(Lead.phone), order_by=col(Lead.created_at))
            .label("rank"),
        )
        .where(among_parameter(dialect, col(Lead.phone), "phones"))
        .subquery("ranked")
    )
    return (
        select(aliased(Lead, ranked))
        .where(ranked.c.rank <= bindparam("limit"))
        .order_by(ranked.c.phone, ranked.c.created_at)
    )


@functools.cache
def _accounts_by_domains(dialect: str) -> Select[Any]:
    return select(Account).where(among_parameter(dialect, col(Account.domain), "domains"))


@functools.cache
def _any_known(dialect: str, *, each: bool) -> Select[bool, bool, bool]:
    return select(
        _any_is(dialect, col(Lead.email), "emails", each=each),
        _any_is(dialect, col(Lead.phone), "phones", each=each),
        _any_is(dialect, col(Account.domain), "domains", each=each),
    )


@dataclass(frozen=True)
class Known:
    """Whether any lead has one of the emails, any lead one of the phones, any account one of
    the domains."""

    emails: bool
    phones: bool
    domains: bool


def known(
    *, session: Session, emails: Sequence[str], phones: Sequence[str], domains: Sequence[str]
) -> Known:
    """One statement of three EXISTS, for a batch small enough to ask in one (at most a
    chunk of each); a larger batch is answered as if all were known."""
    most = max(len(emails), len(phones), len(domains))
    if most > _CHUNK:
        return Known(emails=bool(emails), phones=bool(phones), domains=bool(domains))
    row = session.execute(
        _any_known(dialect_of(session), each=most > 1),
        {"emails": list(emails), "phones": list(phones), "domains": list(domains)},
    ).one()
    return Known(emails=bool(row[0]), phones=bool(row[1]), domains=bool(row[2]))


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]


def leads_by_phone(*, session: Session, phone: str) -> Sequence[Lead]:
    return (
        session.execute(
            select(Lead)
            .where(col(Lead.phone) == phone)
            .order_by(col(Lead.created_at))
            .limit(PHONE_MATCHES)
        )
        .scalars()
        .all()
    )


def leads_by_emails(*, session: Session, emails: Sequence[str]) -> list[Lead]:
    """The leads of these emails (at most one each)."""
    statement = _leads_by_emails(dialect_of(session))
    found: list[Lead] = []
    for chunk in _chunks(sorted(set(emails))):
        found += session.execute(statement, {"emails": list(chunk)}).scalars()
    return found


def leads_by_phones(*, session: Session, phones: Sequence[str], limit: int) -> list[Lead]:
    """For each of these phones, what :func:`leads_by_phone` answers: the ``limit`` oldest
    leads with it, oldest first."""
    statement = _leads_by_phones(dialect_of(session))
    found: list[Lead] = []
    for chunk in _chunks(sorted(set(phones))):
        found += session.execute(statement, {"phones": list(chunk), "limit": limit}).scalars()
    return found


def lead_by_crm_record(*, session: Session, provider: str, record_id: str) -> Lead | None:
    link = session.get(CrmLink, (provider, record_id))
    return session.get(Lead, link.lead_id) if link else None


def crm_link(*, session: Session, provider: str, record_id: str) -> CrmLink | None:
    return session.get(CrmLink, (provider, record_id))


def account_by_domain(*, session: Session, domain: str) -> Account | None:
    return session.execute(
        select(Account).where(col(Account.domain) == domain)
    ).scalar_one_or_none()


def accounts_by_domains(*, session: Session, domains: Sequence[str]) -> list[Account]:
    statement = _accounts_by_domains(dialect_of(session))
    found: list[Account] = []
    for chunk in _chunks(domains):
        found += session.execute(statement, {"domains": list(chunk)}).scalars()
    return found


def accounts_named_like(
    *, session: Session, key_prefix: str, limit: int = 500
) -> Sequence[Account]:
    """Accounts whose name key starts like ``key_prefix``: the candidates for a fuzzy match."""
    return (
        session.execute(
            select(Account)
            .where(col(Account.name_key).startswith(key_prefix, autoescape=True))
            .limit(limit)
        )
        .scalars()
        .all()
    )


def api_key(*, session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def api_keys(*, session: Session) -> Sequence[ApiKey]:
    return session.execute(select(ApiKey).order_by(col(ApiKey.created_at))).scalars().all()


def idempotent_request(*, session: Session, scope: str, key: str) -> IdempotentRequest | None:
    return session.get(IdempotentRequest, (scope, key))


def purge_idempotent_requests(*, session: Session, before: datetime) -> int:
    result = session.execute(
        delete(IdempotentRequest).where(col(IdempotentRequest.created_at) < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def form(*, session: Session, form_id: str) -> Form | None:
    return session.get(Form, form_id)


def forms(*, session: Session) -> Sequence[Form]:
    return session.execute(select(Form).order_by(col(Form.id))).scalars().all()


# Import.content as SQLAlchemy sees it (SQLModel types it ``str``).
_IMPORT_CONTENT = cast("QueryableAttribute[str]", Import.content)


def import_(*, session: Session, import_id: uuid.UUID) -> Import | None:
    """The import without its stored file (megabytes): ``content`` is loaded when read."""
    return session.get(Import, import_id, options=[defer(_IMPORT_CONTENT)])


def claim_import(*, session: Session, import_id: uuid.UUID) -> Import | None:
    """The import locked for this transaction (without its stored file), or None when there
    is none or another worker's transaction holds it: it is in their hands (they keep the
    file parsed), not this one's, until that worker's transaction ends."""
    return (
        session.execute(
            select(Import)
            .options(defer(_IMPORT_CONTENT))
            .where(col(Import.id) == import_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        .scalars()
        .one_or_none()
    )


def pending_imports(*, session: Session) -> Sequence[uuid.UUID]:
    return (
        session.execute(
            select(col(Import.id))
            .where(col(Import.status).in_(("pending", "running")))
            .order_by(col(Import.created_at))
        )
        .scalars()
        .all()
    )


def import_issues(*, session: Session, import_id: uuid.UUID, limit: int) -> Sequence[ImportIssue]:
    return (
        session.execute(
            select(ImportIssue)
            .where(col(ImportIssue.import_id) == import_id)
            .order_by(col(ImportIssue.row), col(ImportIssue.field))
            .limit(limit)
        )
        .scalars()
        .all()
    )


def feedback_of(*, session: Session, lead_id: uuid.UUID) -> Sequence[Feedback]:
    return (
        session.execute(
            select(Feedback)
            .where(col(Feedback.lead_id) == lead_id)
            .order_by(col(Feedback.occurred_at))
        )
        .scalars()
        .all()
    )


# ---------------------------------------------------------------- erasure

# On PostgreSQL, captures hold this lock shared for their transaction and an erasure holds it
# alone: an erasure waits for the captures in flight (so it sees the leads they create) and
# the captures that follow wait for it (so they see its suppression). SQLite runs one writer
# at a time: there, nothing to do.
ERASURE_LOCK = zlib.crc32(b"leadflow-ingest-erasure") - 2**31


def share_erasure_lock(*, session: Session) -> None:
    hold_transaction_lock(session, ERASURE_LOCK, shared=True)


def take_erasure_lock(*, session: Session) -> None:
    hold_transaction_lock(session, ERASURE_LOCK)


# Batch captures on PostgreSQL hold this lock to their commit: one batch at a time
# (capture.capture_many).
BATCH_LOCK = zlib.crc32(b"leadflow-ingest-batch") - 2**31


def take_batch_lock(*, session: Session) -> None:
    hold_transaction_lock(session, BATCH_LOCK)


def any_suppression(*, session: Session) -> bool:
    return session.execute(_ANY_SUPPRESSION).first() is not None


def leads_of_person(*, session: Session, email: str) -> list[Lead]:
    """The lead of this email, and the leads with its phone and no email: deduplication
    would have merged a phone-only submission of that number into it, so they are the same
    person. A lead with the phone and another email is another person."""
    lead = lead_by_email(session=session, email=email)
    if lead is None:
        return []
    found = [lead]
    if lead.phone:
        found += [
            other
            for other in leads_by_phone(session=session, phone=lead.phone)
            if other.id != lead.id and other.email is None and other.erased_at is None
        ]
    return found


def touchpoints_of(*, session: Session, lead_ids: Sequence[uuid.UUID]) -> Sequence[Touchpoint]:
    return (
        session.execute(select(Touchpoint).where(col(Touchpoint.lead_id).in_(lead_ids)))
        .scalars()
        .all()
    )


def feedback_of_leads(*, session: Session, lead_ids: Sequence[uuid.UUID]) -> Sequence[Feedback]:
    return (
        session.execute(select(Feedback).where(col(Feedback.lead_id).in_(lead_ids))).scalars().all()
    )


def delete_crm_links(*, session: Session, lead_ids: Sequence[uuid.UUID]) -> None:
    session.execute(delete(CrmLink).where(col(CrmLink.lead_id).in_(lead_ids)))


def unfinished_imports(
    *, session: Session, ids: Sequence[uuid.UUID], containing: str
) -> Sequence[Import]:
    """Imports still to be processed (their file is kept until then) that are among ``ids``
    or whose file holds ``containing`` (case-insensitive)."""
    return (
        session.execute(
            select(Import).where(
                col(Import.status).in_(("pending", "running")),
                or_(
                    col(Import.id).in_(ids),
                    func.lower(col(Import.content)).contains(containing, autoescape=True),
                ),
            )
        )
        .scalars()
        .all()
    )


def import_issues_of_rows(
    *, session: Session, import_id: uuid.UUID, rows: Sequence[int]
) -> Sequence[ImportIssue]:
    return (
        session.execute(
            select(ImportIssue).where(
                col(ImportIssue.import_id) == import_id, col(ImportIssue.row).in_(rows)
            )
        )
        .scalars()
        .all()
    )


def delete_idempotent_answers_mentioning(*, session: Session, needles: Sequence[str]) -> int:
    """Forget stored answers (a retry's replay) whose body mentions any of ``needles``."""
    if not needles:
        return 0
    result = session.execute(
        delete(IdempotentRequest).where(
            or_(*(col(IdempotentRequest.body).contains(n, autoescape=True) for n in needles))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def suppressions(*, session: Session, digests: Collection[str]) -> Sequence[Suppression]:
    return (
        session.execute(select(Suppression).where(col(Suppression.digest).in_(digests)))
        .scalars()
        .all()
    )


def lift_suppressions(*, session: Session, erasure_ids: Collection[uuid.UUID]) -> None:
    if erasure_ids:
        session.execute(delete(Suppression).where(col(Suppression.erasure_id).in_(erasure_ids)))
