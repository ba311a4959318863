"""a rep's public-holiday calendar

Revision ID: routing_0003
Revises: routing_0002
Create Date: 2026-11-23 19:25:18.267928
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "routing_0003"
down_revision: str | None = "routing_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holiday_calendar", sa.String(length=16), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_column("holiday_calendar")
