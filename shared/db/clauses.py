"""SQL expressions the services share.

:func:`among` is ``column IN (values)`` for a batch's ids. SQLAlchemy renders an ``IN`` list
as one parameter per value, so the statement's text changes with the batch's size and, past
50 parameters, psycopg converts it on every execution without its cache (~8 % of scoring's
CPU in the pipeline bench, for its batch reads by id). On PostgreSQL the values go as one
array instead: ``column = ANY(:values)``, one text whatever the count (a read of 500 ids:
1.8 ms of client CPU instead of 4.7).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, QueryableAttribute
from sqlmodel import Session


def among(
    bind: Session | Connection, column: ColumnElement[Any] | Mapped[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """``column`` (a table's column or a model's attribute) is one of ``values``, for a
    statement run on the database of ``bind`` (a session or a connection)."""
    element = _element(column)
    if dialect_of(bind) == "postgresql":
        return element == any_(bindparam(None, list(values), type_=ARRAY(element.type)))
    return element.in_(values)


def dialect_of(bind: Session | Connection) -> str:
    """The name of the database that ``bind`` (a session or a connection) runs on:
    ``postgresql`` or ``sqlite``."""
    return (bind if isinstance(bind, Connection) else bind.get_bind()).dialect.name


def among_parameter(
    dialect: str, column: ColumnElement[Any] | Mapped[Any], name: str
) -> ColumnElement[bool]:
    """:func:`among` for a statement built once and run many times: the values are the
    parameter ``name``, given at each execution. A statement built anew for each execution
    costs SQLAlchemy its construction and cache key every time: a batch read by ids took
    ~480 µs of client CPU that way, ~230 µs built once (the driver alone: ~200 µs). The
    statements every batch runs are built once for that."""
    element = _element(column)
    if dialect == "postgresql":
        return element == any_(bindparam(name, type_=ARRAY(element.type)))
    return element.in_(bindparam(name, expanding=True))


def _element(column: ColumnElement[Any] | Mapped[Any]) -> ColumnElement[Any]:
    """A table's column as it is; a model's attribute as its column."""
    if isinstance(column, ColumnElement):
        return column
    return cast(QueryableAttribute[Any], column).expression
