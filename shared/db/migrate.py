"""Run and check a service's Alembic migrations without an alembic.ini."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from shared.db.database import Database


def alembic_config(migrations_dir: Path, database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # '%' is interpolation syntax in alembic's config parser.
    url = database.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(migrations_dir: Path, database: Database, revision: str = "head") -> None:
    config = alembic_config(migrations_dir, database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(migrations_dir: Path, database: Database, revision: str) -> None:
    config = alembic_config(migrations_dir, database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def drift(database: Database, metadata: MetaData) -> list[Any]:
    """What differs between the migrated database and the models (empty when in step)."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": metadata}
        )
        return list(compare_metadata(context, metadata))
