"""Advisory locks held until the transaction ends, on PostgreSQL: the locks a service takes
around its own writes (an erasure against captures, an activation against scoring). SQLite
runs one writer at a time (BEGIN IMMEDIATE), so there, there is nothing to take."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from shared.db.clauses import dialect_of

# Built once: some are taken by every batch (shared.db.clauses.among_parameter says why).
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)")
_SHARED = text("SELECT pg_advisory_xact_lock_shared(:key)")


def hold_transaction_lock(session: Session, key: int, *, shared: bool = False) -> None:
    """Wait for the lock ``key`` (a signed 64-bit number), alone or ``shared`` with other
    holders of it shared, and hold it until the session's transaction ends."""
    if dialect_of(session) == "postgresql":
        session.execute(_SHARED if shared else _EXCLUSIVE, {"key": key})
