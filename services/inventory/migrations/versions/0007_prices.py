"""prices: the price each SKU sells at, versioned (PriceChanged goes out through the outbox)

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'price',
        sa.Column('sku', sa.Text(), nullable=False),
        sa.Column('unit_price', sa.Numeric(18, 2), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('sku'),
        sa.CheckConstraint('unit_price > 0', name='price_positive'),
    )


def downgrade() -> None:
    op.drop_table('price')
