"""Group commit on SQLite and PostgreSQL: requests that come while a transaction is being
written share the next one, each gets its own result, and one that breaks its group fails
alone."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from shared.db import Database
from shared.db.group_commit import GroupCommit
from shared.testing.kafka_tools import eventually
from shared.testing.probe.models import Effect


class Writer:
    """Work that writes one effect per item and answers its id; ``hold`` keeps the first
    transaction open until released, so that the requests after it queue."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()
        self.calls: list[list[str]] = []

    def __call__(self, session: Session, items: Sequence[str]) -> list[int]:
        self.calls.append(list(items))
        if self.hold.is_set():
            self.hold.clear()
            self.holding.set()
            assert self.release.wait(timeout=30)
        rows = []
        for item in items:
            if item.startswith("poison"):
                raise ValueError(f"cannot write {item}")
            row = Effect(
                event_id=item, lead_id=uuid.uuid4(), unique_key=item, handled_at=datetime.now(UTC)
            )
            session.add(row)
            rows.append(row)
        session.flush()
        return [row.id or 0 for row in rows]


def written(database: Database) -> list[str]:
    with database.read() as session:
        return sorted(session.execute(select(col(Effect.event_id))).scalars())


async def waiting(group: GroupCommit[Any, Any], requests: int) -> None:
    """Until ``requests`` wait for the next transaction."""
    await eventually(lambda: group.waiting == requests, interval=0.001)


async def queue_behind_a_held_transaction(
    group: GroupCommit[str, int], writer: Writer, first: str, then: list[str]
) -> list[asyncio.Task[int]]:
    """``first`` in a transaction held open, then each of ``then`` queued in this order."""
    writer.hold.set()
    tasks = [asyncio.create_task(group.submit(first))]
    assert await asyncio.to_thread(writer.holding.wait, 30)
    for number, item in enumerate(then, start=1):
        tasks.append(asyncio.create_task(group.submit(item)))
        await waiting(group, number)
    return tasks


async def test_requests_that_come_meanwhile_share_the_next_transaction(
    database: Database,
) -> None:
    writer = Writer()
    committed: list[int] = []
    group = GroupCommit(database, writer, on_committed=lambda: committed.append(1))
    later = [f"later-{n}" for n in range(5)]
    tasks = await queue_behind_a_held_transaction(group, writer, "first", later)
    assert not any(task.done() for task in tasks)  # nobody is answered before the commit
    writer.release.set()
    ids = await asyncio.gather(*tasks)
    assert writer.calls == [["first"], later]
    assert (group.groups, group.largest_group, len(committed)) == (2, 5, 2)
    with database.read() as session:
        rows = session.execute(select(col(Effect.id), col(Effect.event_id)))
        by_id = {row[0]: row[1] for row in rows}
    assert [by_id[each] for each in ids] == ["first", *later]  # each got its own result


async def test_alone_a_request_is_written_at_once_in_its_own_transaction(
    database: Database,
) -> None:
    writer = Writer()
    group = GroupCommit(database, writer)
    for item in ("a", "b", "c"):
        await group.submit(item)
    assert writer.calls == [["a"], ["b"], ["c"]]
    assert written(database) == ["a", "b", "c"]


async def test_an_item_that_breaks_its_group_fails_alone(database: Database) -> None:
    writer = Writer()
    group = GroupCommit(database, writer)
    tasks = await queue_behind_a_held_transaction(
        group, writer, "first", ["x", "poison-1", "y", "first"]
    )
    writer.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], ValueError)
    assert "poison-1" in str(results[2])
    # "first" again breaks the unique key: a database error, also its own.
    assert isinstance(results[4], Exception)
    assert all(isinstance(each, int) for each in (results[0], results[1], results[3]))
    # The group's transaction was rolled back whole, then each item alone.
    assert writer.calls[1] == ["x", "poison-1", "y", "first"]
    assert writer.calls[2:] == [["x"], ["poison-1"], ["y"], ["first"]]
    assert written(database) == ["first", "x", "y"]


async def test_a_group_is_at_most_max_group(database: Database) -> None:
    writer = Writer()
    group = GroupCommit(database, writer, max_group=2)
    tasks = await queue_behind_a_held_transaction(group, writer, "first", ["a", "b", "c"])
    writer.release.set()
    await asyncio.gather(*tasks)
    assert writer.calls == [["first"], ["a", "b"], ["c"]]


async def test_a_request_whose_client_went_away_is_still_written(database: Database) -> None:
    writer = Writer()
    group = GroupCommit(database, writer)
    tasks = await queue_behind_a_held_transaction(group, writer, "first", ["gone", "stays"])
    tasks[1].cancel()
    writer.release.set()
    await asyncio.gather(tasks[0], tasks[2])
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert written(database) == ["first", "gone", "stays"]


async def test_work_must_answer_once_per_item(database: Database) -> None:
    def short(session: Session, items: Sequence[str]) -> list[int]:
        return []

    group = GroupCommit(database, short)
    with pytest.raises(RuntimeError, match="1 items but 0 results"):
        await group.submit("a")
    with pytest.raises(ValueError, match="max_group"):
        GroupCommit(database, short, max_group=0)
