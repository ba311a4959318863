"""effects may carry a key that must be unique

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("effects") as batch:
        batch.add_column(sa.Column("unique_key", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_effects_unique_key", ["unique_key"])


def downgrade() -> None:
    with op.batch_alter_table("effects") as batch:
        batch.drop_constraint("uq_effects_unique_key", type_="unique")
        batch.drop_column("unique_key")
