"""insert_rows (COPY on PostgreSQL) and upsert_rows (arrays in one INSERT … ON CONFLICT):
on either database, the rows that one INSERT after the other would leave."""

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
from shared.db.bulk import insert_rows, upsert_rows
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


def stored(database: Database) -> dict[str, dict[str, Any]]:
    with database.read() as session:
        return {row["name"]: dict(row) for row in session.execute(select(THINGS)).mappings()}


def test_an_upsert_inserts_new_rows_and_updates_the_given_columns_of_known_ones(
    things: Database,
) -> None:
    kept, now = thing("kept", notes="first", amount=Decimal("1.50")), datetime.now(UTC)
    with things.transaction() as session:
        insert_rows(session, THINGS, [kept])
    again = {**kept, "id": uuid.uuid4(), "notes": "second", "amount": Decimal("2.50"), "at": now}
    later = {**again, "id": uuid.uuid4(), "notes": "third"}  # the same name twice: the last wins
    new = thing("new", attributes={"q": 'a"b'}, flag=True)
    with things.transaction() as session:
        upsert_rows(session, THINGS, [again, new, later], key=["name"], update=["notes", "at"])
    rows = stored(things)
    assert set(rows) == {"kept", "new"}
    # Known by its name: the columns to update from the last of its rows, the rest as it was.
    assert (rows["kept"]["id"], rows["kept"]["notes"], rows["kept"]["amount"]) == (
        kept["id"],
        "third",
        Decimal("1.50"),
    )
    assert rows["kept"]["at"] == now
    assert {k: v for k, v in rows["new"].items() if k != "count"} == new


def test_an_upsert_without_updates_skips_rows_already_there_or_earlier_in_the_batch(
    things: Database,
) -> None:
    first = thing("first", notes="kept")
    with things.transaction() as session:
        insert_rows(session, THINGS, [first])
    twice = thing("twice", notes="the first of two")
    with things.transaction() as session:
        upsert_rows(
            session,
            THINGS,
            [
                {**first, "id": uuid.uuid4(), "notes": "skipped"},
                twice,
                {**twice, "id": uuid.uuid4(), "notes": "skipped"},
            ],
        )
    rows = stored(things)
    assert {name: row["notes"] for name, row in rows.items()} == {
        "first": "kept",
        "twice": "the first of two",
    }


def test_an_upsert_takes_columns_with_only_nulls_and_refuses_naive_timestamps(
    things: Database,
) -> None:
    with things.transaction() as session:
        upsert_rows(session, THINGS, [thing("a"), thing("b")], key=["id"])
        with pytest.raises(Exception, match="naive datetime"):
            upsert_rows(session, THINGS, [thing("c", at=datetime(2026, 1, 1))], key=["id"])
    assert sorted(stored(things)) == ["a", "b"]
