"""copy_on_flush: a flush writes the new rows of a model in one insert (COPY on PostgreSQL),
and leaves them in the session as the ORM's own INSERTs would, on either database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import JSON, ForeignKey, event, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship
from sqlmodel import Field, SQLModel, col

from shared.db import Database
from shared.db.bulk import copy_on_flush
from shared.db.types import UtcDateTime


class ScratchModel(SQLModel, registry=registry()):
    pass


class Note(ScratchModel, table=True):
    __tablename__ = "copied_notes"

    id: uuid.UUID = Field(primary_key=True)
    title: str = Field(max_length=200)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    written_at: datetime = Field(sa_type=UtcDateTime)
    # A column whose attribute has another name: the row is read by attribute.
    offset_value: int = Field(default=0, sa_column_kwargs={"name": "offset"})


copy_on_flush(Note)


@pytest.fixture
def notes(database: Database) -> Database:
    ScratchModel.metadata.create_all(database.engine)
    return database


@pytest.fixture
def statements(notes: Database) -> Iterator[list[str]]:
    """The statements SQLAlchemy sends (a COPY goes to the driver directly: not among them)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(notes.engine, "before_cursor_execute", record)
    yield sent
    event.remove(notes.engine, "before_cursor_execute", record)


def note(title: str, **values: Any) -> Note:
    return Note(id=uuid.uuid4(), title=title, written_at=datetime.now(UTC), **values)


def stored(database: Database) -> dict[uuid.UUID, tuple[str, list[str], int]]:
    with database.read() as session:
        return {
            row.id: (row.title, row.tags, row.offset_value)
            for row in session.execute(select(Note)).scalars()
        }


def inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("INSERT INTO copied_notes")]


def test_new_rows_are_written_without_an_insert_each_and_are_persistent_after(
    notes: Database, statements: list[str]
) -> None:
    first, second = note("first", tags=["a", "b"], offset_value=7), note("second")
    with notes.transaction() as session:
        session.add_all([first, second])
        session.flush()
        if notes.is_postgresql:  # SQLite takes insert_rows' executemany, as the ORM would
            assert inserts(statements) == []
        assert inspect(first).persistent
        assert inspect(second).persistent
        assert session.get(Note, first.id) is first
        # Seen by a query in the same transaction, and a change is an UPDATE.
        assert (
            session.execute(select(col(Note.title)).where(col(Note.id) == second.id)).scalar()
            == "second"
        )
        second.title = "second, edited"
        session.flush()
        assert any(s.startswith("UPDATE copied_notes") for s in statements)
    assert stored(notes) == {
        first.id: ("first", ["a", "b"], 7),
        second.id: ("second, edited", [], 0),
    }


def test_a_rolled_back_savepoint_takes_its_new_rows_out_of_the_session(
    notes: Database,
) -> None:
    kept, dropped = note("kept"), note("dropped")
    with notes.transaction() as session:
        session.add(kept)
        session.flush()
        savepoint = session.begin_nested()
        session.add(dropped)
        session.flush()
        savepoint.rollback()
        assert kept in session
        assert dropped not in session
        # Its key is free again in the session, as in the table.
        again = Note(id=dropped.id, title="made again", written_at=datetime.now(UTC))
        session.add(again)
    assert stored(notes) == {kept.id: ("kept", [], 0), dropped.id: ("made again", [], 0)}


def test_a_row_deleted_and_made_again_in_one_flush_is_left_to_the_orm(notes: Database) -> None:
    """The ORM makes it one UPDATE; a COPY before the flush's DELETE would be a duplicate."""
    old = note("old")
    with notes.transaction() as session:
        session.add(old)
    with notes.transaction() as session:
        session.delete(session.get(Note, old.id))
        session.add(Note(id=old.id, title="new", written_at=datetime.now(UTC)))
    assert stored(notes) == {old.id: ("new", [], 0)}


def test_a_duplicate_key_fails_the_flush(notes: Database) -> None:
    first = note("first")
    with notes.transaction() as session:
        session.add(first)
    with pytest.raises(IntegrityError), notes.transaction() as session:
        session.add(Note(id=first.id, title="twin", written_at=datetime.now(UTC)))
    assert stored(notes) == {first.id: ("first", [], 0)}


class Counter(ScratchModel, table=True):
    __tablename__ = "copied_counters"

    id: int | None = Field(default=None, primary_key=True)


class PlainBase(DeclarativeBase):
    pass


class Parent(PlainBase):
    __tablename__ = "copied_parents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    children: Mapped[list[Child]] = relationship()


class Child(PlainBase):
    __tablename__ = "copied_children"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    parent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("copied_parents.id"))


class Watched(ScratchModel, table=True):
    __tablename__ = "copied_watched"

    id: uuid.UUID = Field(primary_key=True)


event.listen(Watched, "after_insert", lambda *_: None)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (Counter, "a primary key the database generates"),
        (Parent, "relationships"),
        (Watched, "insert listeners"),
    ],
)
def test_models_whose_rows_cannot_be_copied_are_refused(model: type[Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        copy_on_flush(model)
