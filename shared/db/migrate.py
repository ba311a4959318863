"""Run and check a service's Alembic migrations without an alembic.ini."""

from __future__ import annotations

import re
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


def next_revision_id(migrations_dir: Path, prefix: str) -> str:
    """``<prefix>_0002`` after ``<prefix>_0001``: ids that sort and say whose they are."""
    numbers = [0]
    for path in (migrations_dir / "versions").glob("*.py"):
        pattern = r"^revision: str = [\"']" + re.escape(prefix) + r"_(\d+)[\"']"
        match = re.search(pattern, path.read_text(), re.MULTILINE)
        if match:
            numbers.append(int(match.group(1)))
    return f"{prefix}_{max(numbers) + 1:04d}"


def autogenerate(migrations_dir: Path, prefix: str, message: str, scratch: Path) -> Path | None:
    """Write the next migration from the difference between the models and the migrations
    (compared on a scratch SQLite database at head). Answers the file written, if any."""
    database = Database(f"sqlite:///{scratch}")
    try:
        upgrade(migrations_dir, database)
        config = alembic_config(migrations_dir, database)
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            script = command.revision(
                config,
                message=message,
                autogenerate=True,
                rev_id=next_revision_id(migrations_dir, prefix),
            )
    finally:
        database.dispose()
    scripts = script if isinstance(script, list) else [script]
    paths = [Path(item.path) for item in scripts if item is not None]
    return paths[0] if paths else None


def drift(database: Database, metadata: MetaData) -> list[Any]:
    """What differs between the migrated database and the models (empty when in step)."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": metadata}
        )
        return list(compare_metadata(context, metadata))
