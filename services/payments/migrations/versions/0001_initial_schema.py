"""initial schema

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from services.common import migration_ops

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_ops.create_service_tables()
    op.create_table('payments',
    sa.Column('payment_id', sa.Text(), nullable=False),
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('provider_ref', sa.Text(), nullable=True),
    sa.Column('decline_code', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('AUTHORIZED','CAPTURED','DECLINED','VOIDED','REFUNDED')",
                       name='payments_status_valid'),
    sa.PrimaryKeyConstraint('payment_id'),
    sa.UniqueConstraint('order_id')
    )


def downgrade() -> None:
    op.drop_table('payments')
    migration_ops.drop_service_tables()
