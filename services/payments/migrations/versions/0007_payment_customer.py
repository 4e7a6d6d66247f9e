"""payments remember whose they are (a customer may read only their own)

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
    # nullable: payments made before this revision have no owner on record and are visible to staff only
    op.add_column('payments', sa.Column('customer_id', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('payments', 'customer_id')
