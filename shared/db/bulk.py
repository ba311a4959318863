"""Many rows into one table in one go on PostgreSQL: ``COPY … FROM STDIN`` for new rows,
one ``INSERT … SELECT FROM unnest(arrays) ON CONFLICT`` for rows that may be there already.

An ``executemany`` of an ``INSERT`` costs the client, for every row, SQLAlchemy's parameter
processing and psycopg's adaptation of each value, and the server a statement execution.
``COPY`` streams the rows as one: 500 rows of ingest's leads (35 columns, three of them
JSON) cost the client ~12 ms of CPU instead of ~21 for the ``INSERT`` and ~45 for the ORM's
flush. Values still go through each column type's bind processing (JSON serialised,
timestamps checked for a time zone), and errors come back as SQLAlchemy's (a duplicate key
is an :class:`~sqlalchemy.exc.IntegrityError`, as it would be from the ``INSERT``). SQLite
takes the ``executemany``.

:func:`upsert_rows` is the ``ON CONFLICT`` case. An ``executemany`` of it is one statement
execution per row on the server; here each column goes as one array, in one statement whose
text depends on the table alone (psycopg prepares it once per connection). It saves the
server's CPU (500 rows of reporting's facts or delivery's lead views: ~7 ms instead of
~10). The arrays go in binary: psycopg builds a text array element by element in Python
(1-3.5 µs an element for uuids, strings and timestamps, 0.2 µs in binary), and 500 rows of
eight columns (uuid, strings, JSON, numeric, integer, boolean, timestamp) cost the client
10.5 µs a row instead of 24.4 in text.

:func:`copy_on_flush` has the ORM's flush write the new rows of some models with
:func:`insert_rows`: one ``COPY`` per table and flush instead of one ``INSERT`` a row, for
code that builds its rows as ORM objects and reads and changes them in the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Column, Connection, Table, event, inspect
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstanceState, Mapper, class_mapper
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

Processor = Callable[[Any], Any] | None


def insert_rows(
    bind: Session | Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (each with the same keys, all of them ``table``'s columns) in the
    transaction of ``bind``. Columns not given take the database's default; a column with a
    default computed in Python must be given (raises ValueError)."""
    if not rows:
        return
    names = tuple(rows[0])
    _check_columns(table, names)
    connection = bind.connection() if isinstance(bind, Session) else bind
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), list(rows))
        return
    statement, processors = _copy_of(table, names, connection.dialect)
    columns = tuple(zip(names, processors, strict=True))
    with _driver_cursor(connection, statement) as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [row[name] if process is None else process(row[name]) for name, process in columns]
            )


@contextmanager
def _driver_cursor(connection: Connection, statement: str) -> Iterator[psycopg.Cursor[Any]]:
    """A psycopg cursor in ``connection``'s transaction; psycopg's errors raised as
    SQLAlchemy's (a duplicate key an IntegrityError, a lost connection an OperationalError)."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor:
            yield cursor
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


@functools.cache
def _check_columns(table: Table, names: tuple[str, ...]) -> None:
    """On both databases alike: COPY cannot compute a default in Python."""
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name}: no columns {unknown}")
    missing = [
        column.name
        for column in table.columns
        if column.name not in names and column.default is not None
    ]
    if missing:
        raise ValueError(f"{table.name}: give {missing}, their defaults are computed in Python")


@functools.cache
def _copy_of(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Processor, ...]]:
    """The COPY statement for these columns of ``table`` and each column's bind processor."""
    columns = [table.c[name] for name in names]
    preparer = dialect.identifier_preparer
    statement = "COPY {} ({}) FROM STDIN".format(
        preparer.format_table(table), ", ".join(preparer.format_column(c) for c in columns)
    )
    return statement, _processors(columns, dialect)


def upsert_rows(
    bind: Session | Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str] = (),
    update: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (each with the same keys, all of them ``table``'s columns); a row
    whose ``key`` is in the table already, or earlier in ``rows``, updates the ``update``
    columns of that row, or with no ``update`` is skipped (then ``key`` may be left out:
    any unique constraint). The outcome is that of the rows inserted one after the other."""
    if not rows:
        return
    if update and not key:
        raise ValueError("an upsert that updates needs the key it conflicts on")
    names = tuple(rows[0])
    _check_columns(table, names)
    connection = bind.connection() if isinstance(bind, Session) else bind
    if connection.dialect.name != "postgresql":
        connection.execute(_sqlite_upsert(table, tuple(key), tuple(update)), list(rows))
        return
    if update:
        rows = _merged_by_key(rows, tuple(key), tuple(update))
    statement, processors = _upsert_of(table, names, tuple(key), tuple(update), connection.dialect)
    arrays = [
        [row[name] if process is None else process(row[name]) for row in rows]
        for name, process in zip(names, processors, strict=True)
    ]
    with _driver_cursor(connection, statement) as cursor:
        cursor.execute(statement, arrays)


def _merged_by_key(
    rows: Sequence[Mapping[str, Any]], key: tuple[str, ...], update: tuple[str, ...]
) -> list[Mapping[str, Any]]:
    """One row per key, as the rows one after the other would leave it: the first one's
    values, its ``update`` columns from the last one (one statement may not touch a row
    twice)."""
    merged: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        identity = tuple(row[name] for name in key)
        first = merged.get(identity)
        merged[identity] = row if first is None else {**first, **{n: row[n] for n in update}}
    return list(merged.values())


@functools.cache
def _upsert_of(
    table: Table,
    names: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[str, ...],
    dialect: Dialect,
) -> tuple[str, tuple[Processor, ...]]:
    """The INSERT … SELECT FROM unnest(…) ON CONFLICT for these columns, and each column's
    bind processor."""
    columns = [table.c[name] for name in names]
    preparer = dialect.identifier_preparer
    arrays = ", ".join(
        f"CAST(%b AS {column.type.compile(dialect=dialect)}[])" for column in columns
    )
    target = f" ({', '.join(preparer.format_column(table.c[name]) for name in key)})" if key else ""
    action = (
        "DO UPDATE SET "
        + ", ".join(
            f"{preparer.format_column(table.c[n])} = EXCLUDED.{preparer.format_column(table.c[n])}"
            for n in update
        )
        if update
        else "DO NOTHING"
    )
    statement = "INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT{} {}".format(
        preparer.format_table(table),
        ", ".join(preparer.format_column(c) for c in columns),
        arrays,
        target,
        action,
    )
    return statement, _processors(columns, dialect)


def _processors(columns: Sequence[Column[Any]], dialect: Dialect) -> tuple[Processor, ...]:
    """What SQLAlchemy does to each value before the driver sees it (JSON serialised,
    timestamps checked for a time zone)."""
    return tuple(column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns)


@functools.cache
def _sqlite_upsert(table: Table, key: tuple[str, ...], update: tuple[str, ...]) -> Any:
    statement = sqlite.insert(table)
    if not update:
        return statement.on_conflict_do_nothing(index_elements=list(key) or None)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in update}
    )


# ---------------------------------------------------------------- new ORM rows by COPY

# Each model's table, and each of its columns' attribute on the model.
_COPIED: dict[type[Any], tuple[Table, tuple[tuple[str, str], ...]]] = {}


def copy_on_flush(*models: type[Any]) -> None:
    """From now on, every session's flush writes the new (pending) rows of ``models`` with
    :func:`insert_rows`, one statement per table, before the ORM writes the rest; they are
    then persistent, as rows the ORM inserted would be: later changes are UPDATEs, a
    savepoint or transaction rolled back takes them out of the session. In routing's bench
    the ORM's flush of an assignment and a lead cost ~95 µs of client CPU; this ~48.

    A model qualifies when its rows carry their primary key (none generated by the
    database), it has no relationships and no listeners of inserts (which would not be
    called); a row must have a value for each column (as SQLModel's constructor and
    :func:`~shared.db.rows.new_row` give it). A flush of some objects only, and a model with
    rows to delete in the same flush (a row deleted and made again must be deleted first),
    are left to the ORM."""
    for model in models:
        mapper: Mapper[Any] = class_mapper(model)
        table = mapper.local_table
        assert isinstance(table, Table)
        problems = []
        if table.autoincrement_column is not None:
            problems.append("a primary key the database generates")
        if mapper.relationships:
            problems.append("relationships")
        if mapper.dispatch.before_insert or mapper.dispatch.after_insert:
            problems.append("insert listeners")
        if problems:
            raise ValueError(
                f"{model.__name__}: its new rows cannot be copied ({', '.join(problems)})"
            )
        _COPIED[model] = (
            table,
            tuple((column.key, mapper.get_property_by_column(column).key) for column in table.c),
        )


@event.listens_for(OrmSession, "before_flush")
def _copy_new_rows(session: OrmSession, _flush_context: Any, instances: Any) -> None:
    if not _COPIED or instances is not None or not session.new:
        return
    by_model: dict[type[Any], list[InstanceState[Any]]] = {}
    for instance in session.new:
        if type(instance) in _COPIED:
            by_model.setdefault(type(instance), []).append(inspect(instance))
    if not by_model:
        return
    deleting = {type(instance) for instance in session.deleted}
    for model, states in by_model.items():
        if model in deleting:
            continue
        table, columns = _COPIED[model]
        rows = [{name: state.dict[key] for name, key in columns} for state in states]
        insert_rows(session.connection(), table, rows)
        # What the ORM's flush does with the rows it inserted: an identity in the session,
        # their values committed, kept with the (sub)transaction so that a rollback of it
        # takes them out again. Private, but the public way (expunge, make them detached,
        # add them again) costs more than the INSERTs it replaces; the tests of
        # copy_on_flush check each of these.
        session._register_persistent(set(states))
