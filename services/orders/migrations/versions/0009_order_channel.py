"""orders.channel: where the customer placed the order (OrderCreated v2); null for earlier orders

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no default: adding it rewrites nothing, and an API instance of the previous release (which does not
    # name the column) keeps inserting orders while the new one rolls out
    op.add_column('orders', sa.Column('channel', sa.Text(), nullable=True))
    op.create_check_constraint('orders_channel_valid', 'orders',
                               "channel IN ('web','mobile','store','partner')")


def downgrade() -> None:
    op.drop_constraint('orders_channel_valid', 'orders')
    op.drop_column('orders', 'channel')
