"""read model: facts from every topic, campaign costs, targets

Revision ID: reporting_0002
Revises: reporting_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "reporting_0002"
down_revision: str | None = "reporting_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assignment_facts",
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("grade", sa.String(1), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("rep_name", sa.String(200), nullable=True),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("sla_due_at", UtcDateTime(), nullable=True),
        sa.Column("reassignment_of", sa.Uuid(), nullable=True),
        sa.Column("routed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("assignment_id"),
    )
    op.create_index("ix_assignment_facts_lead_id", "assignment_facts", ["lead_id"])

    op.create_table(
        "campaign_costs",
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("quarter", sa.String(7), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "quarter"),
    )
    op.create_table(
        "feedback_facts",
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rejection_reason", sa.String(32), nullable=True),
        sa.Column("opportunity_id", sa.String(200), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_feedback_facts_lead_id", "feedback_facts", ["lead_id"])

    op.create_table(
        "grade_facts",
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("grade", sa.String(1), nullable=False),
        sa.Column("touchpoint_id", sa.Uuid(), nullable=True),
        sa.Column("scored_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_grade_facts_lead_id", "grade_facts", ["lead_id"])

    op.create_table(
        "sla_facts",
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_sla_facts_lead_id", "sla_facts", ["lead_id"])

    op.create_table(
        "targets",
        sa.Column("quarter", sa.String(7), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("scope_id", sa.String(200), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=True),
        sa.Column("mqls", sa.Integer(), nullable=True),
        sa.Column("conversion", sa.Float(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("quarter", "scope", "scope_id"),
    )
    op.create_table(
        "touchpoint_facts",
        sa.Column("touchpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("change", sa.String(20), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("door", sa.String(20), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("lead_created_at", UtcDateTime(), nullable=False),
        sa.Column("lead_source", sa.String(200), nullable=True),
        sa.Column("lead_campaign", sa.String(200), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("region", sa.String(20), nullable=True),
        sa.Column("vertical", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("touchpoint_id"),
    )
    op.create_index("ix_touchpoint_facts_lead_id", "touchpoint_facts", ["lead_id"])


def downgrade() -> None:
    op.drop_index("ix_touchpoint_facts_lead_id", table_name="touchpoint_facts")

    op.drop_table("touchpoint_facts")
    op.drop_table("targets")
    op.drop_index("ix_sla_facts_lead_id", table_name="sla_facts")

    op.drop_table("sla_facts")
    op.drop_index("ix_grade_facts_lead_id", table_name="grade_facts")

    op.drop_table("grade_facts")
    op.drop_index("ix_feedback_facts_lead_id", table_name="feedback_facts")

    op.drop_table("feedback_facts")
    op.drop_table("campaign_costs")
    op.drop_index("ix_assignment_facts_lead_id", table_name="assignment_facts")

    op.drop_table("assignment_facts")
