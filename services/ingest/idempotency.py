"""Nothing twice: the first answer to an ``Idempotency-Key`` (or a provider's event id) is
stored with the effects of the request, in the same transaction, and replayed after."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.ingest import repository
from services.ingest.models import IdempotentRequest
from shared.http import problem
from shared.service import ServiceRuntime
from shared.stopping import sleep_or_stop

MAX_KEY_LENGTH = 300


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Key:
    """An ``Idempotency-Key`` as a request brings it, to claim in the request's transaction."""

    scope: str
    key: str
    fingerprint: str


@dataclass
class Claim:
    """A key this request holds: :meth:`answer` records the response to replay."""

    row: IdempotentRequest

    def answer(self, response: Response) -> Response:
        self.row.status_code = response.status_code
        self.row.body = bytes(response.body).decode()
        self.row.media_type = response.media_type or "application/json"
        return response


def claim(session: Session, *, scope: str, key: str, fingerprint: str) -> Claim | Response:
    """Claim ``key`` for this request, or answer what the first request with it got.

    The claim is written at once, so a concurrent request with the same key waits on it and
    then gets a 409 rather than doing the work a second time.
    """
    if len(key) > MAX_KEY_LENGTH:
        return problem(422, "header.idempotency-key", f"longer than {MAX_KEY_LENGTH} characters")
    existing = repository.idempotent_request(session=session, scope=scope, key=key)
    if existing is not None:
        return _replay(existing, fingerprint)
    row = IdempotentRequest(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        status_code=0,
        body="",
        created_at=datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return problem(409, "header.idempotency-key", "a request with this key is being processed")
    return Claim(row)


def _replay(existing: IdempotentRequest, fingerprint: str) -> Response:
    if existing.fingerprint != fingerprint:
        return problem(
            422,
            "header.idempotency-key",
            "this key was used for a different request body",
        )
    if existing.status_code == 0:
        return problem(409, "header.idempotency-key", "a request with this key is being processed")
    response = Response(
        content=existing.body, status_code=existing.status_code, media_type=existing.media_type
    )
    response.headers["Idempotent-Replayed"] = "true"
    return response


def settle(session: Session, claim_: Claim | None, response: Response) -> Response:
    """Record a success to replay; forget the claim of a refusal, so a corrected request
    may use the key again."""
    if claim_ is None:
        return response
    if 200 <= response.status_code < 300:
        return claim_.answer(response)
    session.delete(claim_.row)
    return response


async def purge_expired(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    """The worker that forgets answers older than ``idempotency_retention_hours``: a sender
    retries for hours (HubSpot up to three days), not forever."""
    hours = int(getattr(runtime.settings, "idempotency_retention_hours", 72))

    def purge() -> int:
        with runtime.db.transaction() as session:
            before = datetime.now(UTC) - timedelta(hours=hours)
            return repository.purge_idempotent_requests(session=session, before=before)

    while not stopping.is_set():
        await asyncio.to_thread(purge)
        await sleep_or_stop(stopping, 3600)
