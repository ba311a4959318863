"""Group commit: requests that arrive while a transaction is being written wait for the next
transaction, which takes them all together.

A single-lead request written in a transaction of its own costs a connection, a dozen
round trips and a commit, and under load requests queue for connections; written with the
others that came meanwhile, it costs a share of one transaction. There is no waiting window:
a request that finds no transaction under way starts one at once, so alone it is answered as
fast as before, and under load the groups grow by themselves. A request is answered only
after the commit of the transaction that holds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlmodel import Session

from shared.db.database import Database
from shared.observability.logs import get_logger

log = get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

Work = Callable[[Session, Sequence[Item]], Sequence[Result]]


@dataclass
class _Waiting(Generic[Item, Result]):
    item: Item
    answer: asyncio.Future[Result]


class GroupCommit(Generic[Item, Result]):
    """Runs ``work(session, items)`` in one transaction for every item that waits, at most
    ``max_group`` at a time, one transaction after the other, and hands each request its own
    result (``work`` answers one result per item, in order).

    Should a group's transaction fail, its items are done again one per transaction, so an
    item that breaks the transaction fails alone and the others are written as if it had
    never come. Must be used from one event loop.
    """

    def __init__(
        self,
        db: Database,
        work: Work[Item, Result],
        *,
        max_group: int = 200,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self.db = db
        self.work = work
        self.max_group = max_group
        self.on_committed = on_committed
        self._waiting: list[_Waiting[Item, Result]] = []
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # transactions written, for tests and metrics
        self.largest_group = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for the next transaction."""
        return len(self._waiting)

    async def submit(self, item: Item) -> Result:
        """Wait for ``item``'s transaction to commit; answer its result or raise its error.

        A request cancelled while it waits (the client went away) is still written, as a
        request whose client goes away in the middle of its own transaction is.
        """
        waiting = _Waiting[Item, Result](item, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="group-commit")
        return await waiting.answer

    async def _write_waiting(self) -> None:
        while self._waiting:
            group = self._waiting[: self.max_group]
            del self._waiting[: self.max_group]
            self.groups += 1
            self.largest_group = max(self.largest_group, len(group))
            try:
                results = await asyncio.to_thread(self._write, [each.item for each in group])
            except Exception as error:
                if len(group) == 1:
                    _settle(group[0], error=error)
                    continue
                log.warning("group transaction failed, its items one by one", size=len(group))
                for each in group:
                    try:
                        (result,) = await asyncio.to_thread(self._write, [each.item])
                    except Exception as alone:
                        _settle(each, error=alone)
                    else:
                        _settle(each, result=result)
                continue
            for each, result in zip(group, results, strict=True):
                _settle(each, result=result)

    def _write(self, items: list[Item]) -> Sequence[Result]:
        with self.db.transaction() as session:
            results = self.work(session, items)
            if len(results) != len(items):
                raise RuntimeError(f"{len(items)} items but {len(results)} results")
        self.on_committed()
        return results


def _settle(
    waiting: _Waiting[Item, Result],
    *,
    result: Result | None = None,
    error: BaseException | None = None,
) -> None:
    if waiting.answer.done():  # cancelled with its request: nobody waits for it any more
        return
    if error is not None:
        waiting.answer.set_exception(error)
    else:
        waiting.answer.set_result(result)  # type: ignore[arg-type]
