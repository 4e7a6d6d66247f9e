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
    op.create_table('notifications',
    sa.Column('notification_id', sa.Text(), nullable=False),
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('notification_id'),
    sa.UniqueConstraint('order_id', 'type', 'channel', name='one_notification_per_state_and_channel')
    )
    op.create_index(op.f('ix_notifications_order_id'), 'notifications', ['order_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_notifications_order_id'), table_name='notifications')
    op.drop_table('notifications')
    migration_ops.drop_service_tables()
