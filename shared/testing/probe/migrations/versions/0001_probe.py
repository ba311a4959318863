"""runtime tables and effects

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.migration_ops import create_runtime_tables_v1, drop_runtime_tables_v1
from shared.db.types import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_runtime_tables_v1()
    op.create_table(
        "effects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.Uuid, nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("handled_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_effects_event_id", "effects", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_effects_event_id", table_name="effects")
    op.drop_table("effects")
    drop_runtime_tables_v1()
