"""publish writes made behind the API (plain SQL) as DirectWrite events

Revision ID: 0006
Revises: 0005
"""
from services.common import migration_ops

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None
TABLES = ['orders']


def upgrade() -> None:
    migration_ops.capture_direct_writes(TABLES)


def downgrade() -> None:
    migration_ops.undo_capture_direct_writes(TABLES)
