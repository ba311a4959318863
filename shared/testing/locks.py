"""Tests of transactions that run side by side on PostgreSQL: wait until one waits for
another's lock, without guessing how long that takes."""

from __future__ import annotations

from concurrent.futures import Future
from time import sleep
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from shared.db import Database

_BLOCKED_BY = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")


def backend_of(session: Session) -> int:
    """The server process of the session's connection (PostgreSQL)."""
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def wait_until_blocked_by(database: Database, backend: int, work: Future[Any]) -> None:
    """Until some transaction waits for a lock ``backend`` holds. ``work`` is what should
    come to wait: its error, should it end first, is raised here."""
    while True:
        # A transaction of its own each time: a transaction reads pg_stat_activity once.
        with database.read() as watcher:
            if watcher.execute(_BLOCKED_BY, {"pid": backend}).scalar_one():
                return
        if work.done():
            raise AssertionError(f"ended without waiting: {work.result()!r}")
        sleep(0.01)
