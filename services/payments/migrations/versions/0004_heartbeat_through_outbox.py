"""cdc heartbeat written as an outbox row

Revision ID: 0004
Revises: 0003
"""
from services.common import migration_ops

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_ops.heartbeat_through_outbox()


def downgrade() -> None:
    migration_ops.undo_heartbeat_through_outbox()
