"""BRIN indexes on the timestamps retention deletes by

Revision ID: 0004
Revises: 0003
"""
from services.common import migration_ops

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None
STAMPS = {'inbox': 'processed_at', 'saga_history': 'at'}


def upgrade() -> None:
    migration_ops.index_retention_stamps(STAMPS)


def downgrade() -> None:
    migration_ops.drop_retention_indexes(STAMPS)
