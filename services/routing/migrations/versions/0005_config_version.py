"""config version: bumped by triggers on every write to a configuration table

Revision ID: routing_0005
Revises: routing_0004
Create Date: 2026-11-23 21:45:00.000000

Routing keeps its configuration across transactions while ``config_version`` is unchanged
(services/routing/caching.py). On SQLite, a later migration that rebuilds one of these
tables (``batch_alter_table`` copying it) drops its triggers: create them again there
(``create_triggers``); services/routing/tests/test_caching.py fails until then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "routing_0005"
down_revision: str | None = "routing_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIG_TABLES = (
    "teams",
    "territories",
    "reps",
    "rep_absences",
    "named_accounts",
    "nurture_programs",
    "sla_policy",
)
BUMP = "UPDATE config_version SET version = version + 1 WHERE id = 1"


def create_triggers(tables: Sequence[str] = CONFIG_TABLES) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION routing_bump_config_version() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table in tables:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_config_version ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_config_version "
                f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION routing_bump_config_version()"
            )
        return
    for table in tables:
        for change in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_config_version_{change}")
            op.execute(
                f"CREATE TRIGGER {table}_config_version_{change} "
                f"AFTER {change.upper()} ON {table} BEGIN {BUMP}; END"
            )


def upgrade() -> None:
    op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO config_version (id, version) VALUES (1, 0)")
    create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CONFIG_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_config_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS routing_bump_config_version()")
    else:
        for table in CONFIG_TABLES:
            for change in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_config_version_{change}")
    op.drop_table("config_version")
