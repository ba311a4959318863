"""New ORM rows without SQLModel's constructor.

``Model(**values)`` on a SQLModel table model sets each field through
``SQLModel.__setattr__``, which asks pydantic and the mapper about it on every call: in the
pipeline bench that constructor was a sixth of routing's CPU. :func:`new_row` builds the
same object the way SQLAlchemy builds one it loads from the database.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from pydantic.fields import FieldInfo
from sqlalchemy import Table
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import ClassManager, manager_of_class
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)
_BUILDERS: dict[type[Any], tuple[ClassManager[Any], dict[str, Callable[[], Any]]]] = {}


def new_row(model: type[M], **values: Any) -> M:
    """A new row object: what ``model(**values)`` gives (a table model does not validate;
    fields not given take their defaults), at a fraction of the cost."""
    builder = _BUILDERS.get(model)
    if builder is None:
        configure_mappers()
        defaults = {
            name: _default_of(field)
            for name, field in model.model_fields.items()
            if not field.is_required()
        }
        builder = _BUILDERS[model] = (manager_of_class(model), defaults)
    manager, defaults = builder
    for name, default in defaults.items():
        if name not in values:
            values[name] = default()
    row: M = manager.new_instance()
    # Into the instance's dict, as SQLAlchemy fills an object it loads: a new object has no
    # history to record, and its INSERT reads its values from there.
    row.__dict__.update(values)
    return row


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core table, for statements without the ORM (SQLModel leaves
    ``__table__`` untyped)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _default_of(field: FieldInfo) -> Callable[[], Any]:
    """What ``field.get_default(call_default_factory=True)`` answers, without its cost (it
    inspects the factory's signature on every call): a factory's new value, a shared
    immutable default as it is, and a copy of a mutable one."""
    factory = field.default_factory
    if factory is not None and not field.default_factory_takes_validated_data:
        return cast(Callable[[], Any], factory)
    if factory is None and isinstance(field.default, _IMMUTABLE):
        default = field.default
        return lambda: default
    return functools.partial(field.get_default, call_default_factory=True)


_IMMUTABLE = (type(None), bool, int, float, str, bytes, Decimal, datetime, uuid.UUID, tuple)
