"""cdc heartbeat table

Revision ID: 0003
Revises: 0002
"""
from services.common import migration_ops

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_ops.add_cdc_heartbeat()


def downgrade() -> None:
    migration_ops.drop_cdc_heartbeat()
