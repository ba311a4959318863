"""Looking for a person in a service's database: every column of every table, as text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, select

from shared.db import Database


@dataclass(frozen=True)
class Found:
    table: str
    column: str
    needle: str
    value: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} holds {self.needle!r}: {self.value[:200]!r}"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def find_in_database(database: Database, needles: Iterable[str]) -> list[Found]:
    """Every place (table, column) where one of ``needles`` appears, case-insensitively, in
    any value of any row, the tables found by reflection (not by the models: nothing is
    left out). JSON is searched as its text, with non-ASCII characters as they are."""
    wanted = [needle for needle in needles if needle]
    lowered = [needle.lower() for needle in wanted]
    metadata = MetaData()
    metadata.reflect(database.engine)
    found: list[Found] = []
    with database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            for row in connection.execute(select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = _text(value)
                    lower = text.lower()
                    for needle, low in zip(wanted, lowered, strict=True):
                        if low in lower:
                            found.append(Found(table.name, str(column), needle, text))
    return found
