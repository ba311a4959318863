"""The body of every service's ``migrations/env.py``.

A service's env.py is two lines: import its metadata, call :func:`run`. Migrations run on
the connection handed over in ``config.attributes['connection']`` when there is one (tests,
``leadflow migrate``), else on an engine built from ``sqlalchemy.url``.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, MetaData
from sqlmodel.sql.sqltypes import AutoString

from shared.db.database import Database
from shared.db.types import UtcDateTime


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the column types autogenerate does not know so that the migration imports:
    SQLModel's ``AutoString`` is a plain ``String``; ``UtcDateTime`` comes with its import."""
    if type_ != "type":
        return False
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if isinstance(obj, UtcDateTime):
        autogen_context.imports.add("from shared.db.types import UtcDateTime")
        return "UtcDateTime()"
    return False


def _configure(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        user_module_prefix="shared.db.types.",
        render_item=_render_item,
    )


def run(metadata: MetaData) -> None:
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection: Any = config.attributes.get("connection")
    if connection is not None:
        _configure(connection, metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    database = Database(config.get_main_option("sqlalchemy.url") or "")
    try:
        with database.engine.connect() as connection:
            _configure(connection, metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.dispose()
