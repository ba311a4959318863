"""imports count their warnings; import_issues lose an index their unique key covers

Revision ID: ingest_0006
Revises: ingest_0005
Create Date: 2026-11-25 03:40:12.501377
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ingest_0006"
down_revision: str | None = "ingest_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.Integer(), server_default="0", nullable=False))
    # Imports made before this revision: their warnings as the report counted them.
    op.execute(
        "UPDATE imports SET warnings = (SELECT count(*) FROM import_issues"
        " WHERE import_issues.import_id = imports.id AND import_issues.severity = 'warning')"
    )
    with op.batch_alter_table("import_issues", schema=None) as batch_op:
        batch_op.drop_index("ix_import_issues_import_id")


def downgrade() -> None:
    with op.batch_alter_table("import_issues", schema=None) as batch_op:
        batch_op.create_index("ix_import_issues_import_id", ["import_id"], unique=False)
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later): a copy of the table, batch mode's
    # way, would drop the table that import issues point to, which SQLite refuses.
    with op.batch_alter_table("imports", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("warnings")
