"""scoring tables: rulebooks, lead projection, scores, history, feedback, rescore jobs

Revision ID: scoring_0002
Revises: scoring_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "scoring_0002"
down_revision: str | None = "scoring_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rejection_reason", sa.String(length=30), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_lead_id"), ["lead_id"], unique=False)

    op.create_table(
        "leads",
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("touchpoint_count", sa.Integer(), nullable=False),
        sa.Column("company_domain", sa.String(length=255), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leads_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_leads_company_domain"), ["company_domain"], unique=False
        )

    op.create_table(
        "rescore_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rulebook_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("leads_rescored", sa.Integer(), nullable=False),
        sa.Column("grades_changed", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rescore_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rescore_jobs_rulebook_version"), ["rulebook_version"], unique=False
        )

    op.create_table(
        "rulebooks",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=10), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("activated_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("rulebooks", schema=None) as batch_op:
        batch_op.create_index(
            "ux_rulebooks_active",
            ["active"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.create_table(
        "score_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("rulebook_version", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("previous_grade", sa.String(length=1), nullable=True),
        sa.Column("fit_score", sa.Float(), nullable=False),
        sa.Column("engagement_score", sa.Float(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(length=30), nullable=False),
        sa.Column("touchpoint_id", sa.Uuid(), nullable=True),
        sa.Column("scored_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("score_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_score_history_lead_id"), ["lead_id"], unique=False)

    op.create_table(
        "scores",
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("rulebook_version", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("fit_score", sa.Float(), nullable=False),
        sa.Column("engagement_score", sa.Float(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(length=30), nullable=False),
        sa.Column("touchpoint_id", sa.Uuid(), nullable=True),
        sa.Column("scored_at", UtcDateTime(), nullable=False),
        sa.Column("next_check_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scores_next_check_at"), ["next_check_at"], unique=False
        )

    op.create_table(
        "touchpoints",
        sa.Column("touchpoint_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("door", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("utm_source", sa.String(length=200), nullable=True),
        sa.Column("utm_medium", sa.String(length=200), nullable=True),
        sa.Column("utm_campaign", sa.String(length=200), nullable=True),
        sa.Column("utm_term", sa.String(length=200), nullable=True),
        sa.Column("utm_content", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("touchpoint_id"),
    )
    with op.batch_alter_table("touchpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_touchpoints_lead_id"), ["lead_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("touchpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_touchpoints_lead_id"))

    op.drop_table("touchpoints")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scores_next_check_at"))

    op.drop_table("scores")
    with op.batch_alter_table("score_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_score_history_lead_id"))

    op.drop_table("score_history")
    with op.batch_alter_table("rulebooks", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_rulebooks_active",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.drop_table("rulebooks")
    with op.batch_alter_table("rescore_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rescore_jobs_rulebook_version"))

    op.drop_table("rescore_jobs")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leads_company_domain"))
        batch_op.drop_index(batch_op.f("ix_leads_account_id"))

    op.drop_table("leads")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_lead_id"))

    op.drop_table("feedback")
