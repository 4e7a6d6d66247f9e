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
    op.create_table('reservation_lines',
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('sku', sa.Text(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('order_id', 'sku')
    )
    op.create_table('reservations',
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_table('stock',
    sa.Column('sku', sa.Text(), nullable=False),
    sa.Column('available', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), server_default='0', nullable=False),
    sa.Column('committed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('available >= 0 AND reserved >= 0 AND committed >= 0', name='stock_never_negative'),
    sa.PrimaryKeyConstraint('sku')
    )


def downgrade() -> None:
    op.drop_table('stock')
    op.drop_table('reservations')
    op.drop_table('reservation_lines')
    migration_ops.drop_service_tables()
