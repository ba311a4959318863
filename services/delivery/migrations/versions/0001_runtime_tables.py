"""runtime tables: processed events and outbox

Revision ID: delivery_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from shared.db.migration_ops import create_runtime_tables_v1, drop_runtime_tables_v1

revision: str = "delivery_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_runtime_tables_v1()


def downgrade() -> None:
    drop_runtime_tables_v1()
