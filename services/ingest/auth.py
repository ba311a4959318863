"""API keys for the JSON and import doors: ``lf_<id>_<secret>``, stored as a SHA-256 hash.

The secret is 32 random bytes, so a plain SHA-256 is the right hash (no password
stretching needed). The check runs before the request body is read or parsed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlmodel import Session

from services.ingest import repository
from services.ingest.models import ApiKey
from shared.http import problem, runtime_of

PREFIX = "lf_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, name: str) -> str:
    """Store a new key; answer the full key, which is shown once and never stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(id=key_id, name=name, secret_hash=_hash(secret), created_at=datetime.now(UTC))
    )
    return f"{PREFIX}{key_id}_{secret}"


def verify_key(session: Session, presented: str) -> ApiKey | None:
    if not presented.startswith(PREFIX) or presented.count("_") < 2:
        return None
    key_id, _, secret = presented[len(PREFIX) :].partition("_")
    stored = repository.api_key(session=session, key_id=key_id)
    if stored is None or stored.revoked_at is not None:
        return None
    if not hmac.compare_digest(stored.secret_hash, _hash(secret)):
        return None
    return stored


class VerifiedKeys:
    """Keys found valid in the last ``seconds``, by the key presented: a client sending
    hundreds of requests a second is checked against the database once per period, not
    once per request. A key revoked meanwhile stops working at the end of the period."""

    MAX_ENTRIES = 1_000

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._verified: dict[str, tuple[str, float]] = {}  # presented -> (key id, checked at)

    def get(self, presented: str) -> str | None:
        entry = self._verified.get(presented)
        if entry is None:
            return None
        key_id, checked_at = entry
        if self.clock() - checked_at >= self.seconds:
            del self._verified[presented]
            return None
        return key_id

    def remember(self, presented: str, key_id: str) -> None:
        if self.seconds <= 0:
            return
        if len(self._verified) >= self.MAX_ENTRIES:
            self._verified.clear()  # many keys at once is rare: start again, not an LRU
        self._verified[presented] = (key_id, self.clock())


def presented_key(request: Request) -> str | None:
    header = request.headers.get("x-api-key")
    if header:
        return header.strip()
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


class ApiKeyRoute(APIRoute):
    """A route that answers 401 before it reads the body unless a valid API key came."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            runtime = runtime_of(request)
            if getattr(runtime.settings, "require_api_key", True):
                presented = presented_key(request)
                if presented is None:
                    return _unauthorized("an API key is required (X-API-Key or Bearer)")

                verified: VerifiedKeys | None = runtime.state.get("verified_keys")
                if verified is None:
                    seconds = getattr(runtime.settings, "api_key_cache_seconds", 0.0)
                    verified = runtime.state["verified_keys"] = VerifiedKeys(seconds)
                key_id = verified.get(presented)
                if key_id is None:

                    def check() -> ApiKey | None:
                        with runtime.db.read() as session:
                            return verify_key(session, presented)

                    key = await asyncio.to_thread(check)
                    if key is None:
                        return _unauthorized("the API key is not valid")
                    key_id = key.id
                    verified.remember(presented, key_id)
                request.state.api_key_id = key_id
            else:
                request.state.api_key_id = "open"
            return await handler(request)

        return guarded


def _unauthorized(message: str) -> Response:
    response = problem(401, "header.x-api-key", message, type="unauthorized")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response
