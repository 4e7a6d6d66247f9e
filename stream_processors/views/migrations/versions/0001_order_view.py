"""order view, its timeline, delivery counters

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common import migration_ops

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_view",
        sa.Column("order_id", sa.Text(), primary_key=True),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("order_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("payment_status", sa.Text(), nullable=True),
        sa.Column("payment_rank", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("stock_status", sa.Text(), nullable=True),
        sa.Column("stock_rank", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("payment_method", sa.Text(), nullable=True),
        sa.Column("total_amount", sa.Numeric(18, 2), nullable=True),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_order_view_customer_id", "order_view", ["customer_id"])
    op.create_table(
        "order_timeline",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kafka_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_order_timeline_order_id", "order_timeline", ["order_id"])
    migration_ops.create_delivery_counters()


def downgrade() -> None:
    op.drop_table("delivery_counter")
    op.drop_table("order_timeline")
    op.drop_table("order_view")
