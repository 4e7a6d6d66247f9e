"""continuous reconciliation: checks due, violations found

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_check",
        sa.Column("subject", sa.Text(), primary_key=True),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pending_check_due_at", "pending_check", ["due_at"])
    op.create_table(
        "violation",
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("repair", sa.Text(), nullable=True),
        sa.Column("repairs_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("first_seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subject", "kind"),
        sa.CheckConstraint("status IN ('REPAIRING','NEEDS_OPERATOR','RESOLVED')", name="violation_status_valid"),
    )
    op.create_index("ix_violation_status", "violation", ["status"])


def downgrade() -> None:
    op.drop_table("violation")
    op.drop_table("pending_check")
