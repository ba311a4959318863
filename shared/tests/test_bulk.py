"""insert_rows: COPY on PostgreSQL, an executemany on SQLite, the same rows either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    select,
)
from sqlalchemy.exc import IntegrityError

from shared.db import Database
from shared.db.bulk import insert_rows
from shared.db.types import UtcDateTime

scratch = MetaData()
THINGS = Table(
    "bulk_things",
    scratch,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("notes", Text),
    Column("attributes", JSON, nullable=False),
    Column("amount", Numeric(20, 2)),
    Column("count", Integer, nullable=False, server_default="7"),
    Column("flag", Boolean),
    Column("at", UtcDateTime, nullable=False),
)
WITH_PYTHON_DEFAULT = Table(
    "bulk_defaults",
    scratch,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), default="x"),
)


@pytest.fixture
def things(database: Database) -> Database:
    scratch.create_all(database.engine)
    return database


def thing(name: str, **values: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "name": name,
        "notes": None,
        "attributes": {},
        "amount": None,
        "flag": None,
        "at": datetime.now(UTC),
        **values,
    }


def test_rows_come_back_as_they_went_in_whatever_their_values(things: Database) -> None:
    paris = timezone(timedelta(hours=1))
    rows = [
        thing(
            "tabs\tnew\nlines \\ back\\slash \"quotes\" 'and' Jörg Weiß 東京 \N{PILE OF POO}",
            notes="\\N is not null here; nor is an empty line:\n\n.",
            attributes={"stand": "B4", "nested": {"list": [1, 2.5, None, True]}, "q": 'a"b\\c'},
            amount=Decimal("1234567.89"),
            flag=True,
            at=datetime(2026, 11, 24, 10, 15, 30, 250000, tzinfo=paris),
        ),
        thing("empty", notes="", flag=False),
        thing("nulls"),
    ]
    with things.transaction() as session:
        insert_rows(session, THINGS, rows)
    with things.read() as session:
        stored = {row["name"]: row for row in session.execute(select(THINGS)).mappings()}
    assert set(stored) == {row["name"] for row in rows}
    for row in rows:
        back = dict(stored[row["name"]])
        assert back.pop("count") == 7  # not given: the database's default
        assert back == row
    assert stored[rows[0]["name"]]["at"].tzinfo == UTC


def test_a_duplicate_key_is_an_integrity_error_and_rolls_back_with_its_savepoint(
    things: Database,
) -> None:
    with things.transaction() as session:
        insert_rows(session, THINGS, [thing("first")])
        with pytest.raises(IntegrityError), session.begin_nested():
            insert_rows(session, THINGS, [thing("second"), thing("first")])
        insert_rows(session, THINGS, [thing("third")])
    with things.read() as session:
        assert sorted(session.execute(select(THINGS.c.name)).scalars()) == ["first", "third"]


def test_naive_timestamps_are_refused(things: Database) -> None:
    with things.transaction() as session, pytest.raises(Exception, match="naive datetime"):
        insert_rows(session, THINGS, [thing("naive", at=datetime(2026, 1, 1))])


def test_a_column_whose_default_python_computes_must_be_given(things: Database) -> None:
    """COPY could not compute it; on SQLite too, so code that passes there passes here."""
    with things.transaction() as session:
        insert_rows(session, WITH_PYTHON_DEFAULT, [{"id": 1, "kind": "y"}])
        with pytest.raises(ValueError, match=r"bulk_defaults: give \['kind'\]"):
            insert_rows(session, WITH_PYTHON_DEFAULT, [{"id": 2}])
        with pytest.raises(ValueError, match=r"bulk_defaults: no columns \['colour'\]"):
            insert_rows(session, WITH_PYTHON_DEFAULT, [{"id": 3, "kind": "z", "colour": "red"}])


def test_no_rows_is_nothing_to_do(things: Database) -> None:
    with things.transaction() as session:
        insert_rows(session, THINGS, [])
    with things.read() as session:
        assert session.execute(select(THINGS)).first() is None
