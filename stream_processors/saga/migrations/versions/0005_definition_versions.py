"""the version of its definition each saga instance runs (every instance so far ran version 1)

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('saga_instance', sa.Column('definition_version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    op.drop_column('saga_instance', 'definition_version')
