"""BRIN indexes on the timestamps retention deletes by

Revision ID: 0006
Revises: 0005
"""
from services.common import migration_ops

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None
STAMPS = migration_ops.SERVICE_STAMPS


def upgrade() -> None:
    migration_ops.index_retention_stamps(STAMPS)


def downgrade() -> None:
    migration_ops.drop_retention_indexes(STAMPS)
