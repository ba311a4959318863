"""crm links remember the newest version applied

Revision ID: ingest_0003
Revises: ingest_0002
Create Date: 2026-11-23 19:46:59.507729
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "ingest_0003"
down_revision: str | None = "ingest_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crm_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("modified_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_links", schema=None) as batch_op:
        batch_op.drop_column("modified_at")
