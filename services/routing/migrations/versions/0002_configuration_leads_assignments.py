"""configuration, SLA policy, round robin, leads, assignments and feedback

Revision ID: routing_0002
Revises: routing_0001
Create Date: 2026-11-23 19:04:49.932634
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "routing_0002"
down_revision: str | None = "routing_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=True),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("program_id", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("reassignment_of", sa.Uuid(), nullable=True),
        sa.Column("routed_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("sla_status", sa.String(length=16), nullable=True),
        sa.Column("sla_warn_at", UtcDateTime(), nullable=True),
        sa.Column("sla_due_at", UtcDateTime(), nullable=True),
        sa.Column("sla_settled_at", UtcDateTime(), nullable=True),
        sa.Column("feedback_status", sa.String(length=16), nullable=True),
        sa.Column("rejection_reason", sa.String(length=32), nullable=True),
        sa.Column("opportunity_id", sa.String(length=200), nullable=True),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("first_feedback_at", UtcDateTime(), nullable=True),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_lead", ["lead_id", "routed_at"], unique=False)
        batch_op.create_index("ix_assignments_rep_state", ["rep_id", "state"], unique=False)
        batch_op.create_index("ix_assignments_sla", ["sla_status", "sla_due_at"], unique=False)

    op.create_table(
        "config_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("via", sa.String(length=32), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("config_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_config_changes_changed_at"), ["changed_at"], unique=False
        )
        batch_op.create_index("ix_config_changes_entity", ["entity", "entity_id"], unique=False)

    op.create_table(
        "lead_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rejection_reason", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("opportunity_id", sa.String(length=200), nullable=True),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("rep_crm_user_id", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("assignment_id", sa.Uuid(), nullable=True),
        sa.Column("applied_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("lead_feedback", schema=None) as batch_op:
        batch_op.create_index("ix_lead_feedback_lead", ["lead_id", "occurred_at"], unique=False)

    op.create_table(
        "named_accounts",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("domain"),
    )
    with op.batch_alter_table("named_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_named_accounts_rep_id"), ["rep_id"], unique=False)

    op.create_table(
        "nurture_programs",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("grades", sa.JSON(), nullable=False),
        sa.Column("verticals", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("program_id"),
    )
    op.create_table(
        "rep_absences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("starts_at", UtcDateTime(), nullable=False),
        sa.Column("ends_at", UtcDateTime(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rep_absences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rep_absences_rep_id"), ["rep_id"], unique=False)

    op.create_table(
        "reps",
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("crm_user_id", sa.String(length=200), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("working_hours", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rep_id"),
    )
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reps_crm_user_id"), ["crm_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reps_team_id"), ["team_id"], unique=False)

    op.create_table(
        "rotation_passes",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("pass_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "rep_id"),
    )
    op.create_table(
        "routed_leads",
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("previous_grade", sa.String(length=1), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("region", sa.String(length=10), nullable=True),
        sa.Column("postal_code", sa.String(length=32), nullable=True),
        sa.Column("vertical", sa.String(length=64), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("scored_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("current_assignment_id", sa.Uuid(), nullable=True),
        sa.Column("recycled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    with op.batch_alter_table("routed_leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routed_leads_scored_at"), ["scored_at"], unique=False)

    op.create_table(
        "sla_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_up_hours", sa.JSON(), nullable=False),
        sa.Column("warning_fraction", sa.Float(), nullable=False),
        sa.Column("max_reassignments", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "team_rotations",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("virtual_time", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id"),
    )
    op.create_table(
        "teams",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("territory_ids", sa.JSON(), nullable=False),
        sa.Column("verticals", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id"),
    )
    op.create_table(
        "territories",
        sa.Column("territory_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=10), nullable=True),
        sa.Column("postal_prefixes", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("territory_id"),
    )


def downgrade() -> None:

    op.drop_table("territories")
    op.drop_table("teams")
    op.drop_table("team_rotations")
    op.drop_table("sla_policy")
    with op.batch_alter_table("routed_leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routed_leads_scored_at"))

    op.drop_table("routed_leads")
    op.drop_table("rotation_passes")
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reps_team_id"))
        batch_op.drop_index(batch_op.f("ix_reps_crm_user_id"))

    op.drop_table("reps")
    with op.batch_alter_table("rep_absences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rep_absences_rep_id"))

    op.drop_table("rep_absences")
    op.drop_table("nurture_programs")
    with op.batch_alter_table("named_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_named_accounts_rep_id"))

    op.drop_table("named_accounts")
    with op.batch_alter_table("lead_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_feedback_lead")

    op.drop_table("lead_feedback")
    with op.batch_alter_table("config_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_config_changes_entity")
        batch_op.drop_index(batch_op.f("ix_config_changes_changed_at"))

    op.drop_table("config_changes")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_sla")
        batch_op.drop_index("ix_assignments_rep_state")
        batch_op.drop_index("ix_assignments_lead")

    op.drop_table("assignments")
