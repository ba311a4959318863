"""Tests of transactions that run side by side on PostgreSQL: wait until one waits for
another's lock, without guessing how long that takes."""

from __future__ import annotations

from concurrent.futures import Future
from time import monotonic, sleep
from typing import Any

from sqlalchemy import TextClause, text
from sqlmodel import Session

from shared.db import Database

_BLOCKED_BY = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
_WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
)
_WAITING_FOR_AN_ADVISORY_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
# How long the work may take to come to wait before the test fails saying so.
WAIT_LIMIT_S = 30.0


def backend_of(session: Session) -> int:
    """The server process of the session's connection (PostgreSQL)."""
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def wait_until_blocked_by(database: Database, backend: int, work: Future[Any]) -> None:
    """Until some transaction waits for a lock ``backend`` holds. ``work`` is what should
    come to wait: its error, should it end first, is raised here."""
    _wait_until_counted(database, _BLOCKED_BY, {"pid": backend}, work)


def wait_until_waiting_for_a_lock(database: Database, work: Future[Any]) -> None:
    """Until some transaction of the database waits for a lock, whoever holds it: for a
    holder whose connection the test cannot ask (one inside the code under test)."""
    _wait_until_counted(database, _WAITING_FOR_A_LOCK, {}, work)


def wait_until_waiting_for_an_advisory_lock(database: Database, work: Future[Any]) -> None:
    """Until some transaction of the database waits for an advisory lock (the erasure
    ledger's turns, for one), whoever holds it."""
    _wait_until_counted(database, _WAITING_FOR_AN_ADVISORY_LOCK, {}, work)


def _wait_until_counted(
    database: Database, count: TextClause, parameters: dict[str, Any], work: Future[Any]
) -> None:
    deadline = monotonic() + WAIT_LIMIT_S
    while True:
        # A transaction of its own each time: a transaction reads pg_stat_activity once.
        with database.read() as watcher:
            if watcher.execute(count, parameters).scalar_one():
                return
        if work.done():
            raise AssertionError(f"ended without waiting: {work.result()!r}")
        if monotonic() > deadline:
            raise AssertionError(f"nothing came to wait in {WAIT_LIMIT_S:.0f} s")
        sleep(0.01)
