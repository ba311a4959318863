"""What a block of code sent to the database, for tests that count or read its statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def statements_sent(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent through ``engine`` inside the block, from any thread, with its
    parameters, as the driver got them: an executemany once, SAVEPOINTs among them; BEGIN,
    COMMIT and the data of a COPY not."""
    sent: list[tuple[str, Any]] = []

    def captured(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", captured)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", captured)
