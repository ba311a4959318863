"""Rulebook versions: stored as posted, compiled once per process, one of them active.

When no rulebook exists yet, the default that ships with the service is stored as version 1
and activated, so there is always an active rulebook to score with.

A transaction that writes scores reads the active version once (:func:`for_scoring`) and
holds the rulebook lock, shared, until it commits; an activation takes it exclusively. So on
PostgreSQL, with several replicas, no score of the version an activation replaced is
committed after the activation: the re-scoring job that follows sees every lead scored
before it (SQLite runs one writer at a time anyway).
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime

from sqlmodel import Session

from services.scoring import repository
from services.scoring.domain.document import MediaType, RulebookDoc, parse_source
from services.scoring.domain.engine import Rulebook, compile_rulebook
from services.scoring.models import RescoreJob, RulebookRecord
from services.scoring.rulebooks import default_source

_CACHE_SIZE = 32
_compiled: dict[tuple[int, str], Rulebook] = {}
_lock = threading.Lock()
# The transaction's active rulebook, in its session's info.
_ACTIVE = "scoring.active_rulebook"


def for_scoring(*, session: Session, now: datetime) -> Rulebook:
    """The active rulebook, compiled, to write scores with in this transaction: read once
    per transaction, under the rulebook lock (shared) taken first, before any lead's lock.
    ``now`` dates the default rulebook if it has to be installed."""
    found: Rulebook | None = session.info.get(_ACTIVE)
    if found is None:
        repository.share_rulebook_lock(session=session)
        found = compiled(ensure_active(session=session, now=now))
        # Inside a savepoint (a batch re-run a record at a time) the lock and a default
        # just installed go if it rolls back: read again next time.
        if not session.in_nested_transaction():
            session.info[_ACTIVE] = found
    return found


def compiled(record: RulebookRecord) -> Rulebook:
    """The record's rulebook, ready to score with. Versions never change once stored, so a
    compiled version is kept (keyed by its checksum too: each test database has its own)."""
    key = (record.version, record.checksum)
    with _lock:
        found = _compiled.get(key)
    if found is not None:
        return found
    rulebook = compile_rulebook(document_of(record), version=record.version)
    with _lock:
        if len(_compiled) >= _CACHE_SIZE:
            _compiled.pop(next(iter(_compiled)))
        _compiled[key] = rulebook
    return rulebook


def document_of(record: RulebookRecord) -> RulebookDoc:
    return parse_source(record.source, media_of(record.media_type))


def media_of(value: str) -> MediaType:
    return "json" if value == "json" else "yaml"


def create(*, session: Session, source: str, media: MediaType, now: datetime) -> RulebookRecord:
    """Validate and store a new version (not active). Raises RulebookInvalid."""
    ensure_active(session=session, now=now)
    return _store(session=session, source=source, media=media, now=now, active=False)


def _store(
    *, session: Session, source: str, media: MediaType, now: datetime, active: bool
) -> RulebookRecord:
    record = _next_version(session=session, source=source, media=media, now=now, active=active)
    session.add(record)
    session.flush()
    return record


def _next_version(
    *, session: Session, source: str, media: MediaType, now: datetime, active: bool
) -> RulebookRecord:
    document = parse_source(source, media)
    return RulebookRecord(
        version=repository.latest_rulebook_version(session=session) + 1,
        name=document.name,
        description=document.description,
        source=source,
        media_type=media,
        checksum=hashlib.sha256(source.encode()).hexdigest(),
        created_at=now,
        active=active,
        activated_at=now if active else None,
    )


def ensure_active(*, session: Session, now: datetime) -> RulebookRecord:
    """The active version; the shipped default becomes version 1 when there is none."""
    active = repository.active_rulebook(session=session)
    if active is not None:
        return active
    # At start the installing worker and the first batch scored both find none. The later
    # insert waits for the earlier one's transaction and, if it committed, leaves its version.
    default = _next_version(
        session=session, source=default_source(), media="yaml", now=now, active=True
    )
    repository.add_rulebook_unless_taken(session=session, record=default)
    active = repository.active_rulebook(session=session)
    if active is None:
        raise RuntimeError("the default rulebook was neither installed nor found")
    return active


def activate(*, session: Session, record: RulebookRecord, now: datetime) -> RescoreJob:
    """Make ``record`` the active version and queue the re-scoring of every open lead."""
    # Waits for the transactions writing scores with the version it replaces.
    repository.take_rulebook_lock(session=session)
    session.info.pop(_ACTIVE, None)
    repository.deactivate_rulebooks(session=session)
    record.active = True
    record.activated_at = now
    session.add(record)
    session.flush()
    return repository.add_rescore_job(session=session, rulebook_version=record.version, now=now)
