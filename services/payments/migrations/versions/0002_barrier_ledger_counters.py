"""payment barrier, simulated provider ledger, delivery counters

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from services.common import migration_ops

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_ops.dead_letters_to_topic()
    op.create_table(
        'payment_barrier',
        sa.Column('order_id', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('order_id'),
    )
    # the simulated provider's own ledger (a real provider keeps this on its side)
    op.create_table(
        'sim_provider_ledger',
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('provider_ref', sa.Text(), nullable=False),
        sa.Column('approved', sa.Boolean(), nullable=False),
        sa.Column('decline_code', sa.Text(), nullable=True),
        sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('idempotency_key'),
    )


def downgrade() -> None:
    op.drop_table('sim_provider_ledger')
    op.drop_table('payment_barrier')
    migration_ops.undo_dead_letters_to_topic()
