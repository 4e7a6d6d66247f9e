"""publish writes made behind the API (plain SQL) as DirectWrite events

Revision ID: 0005
Revises: 0004
"""
from services.common import migration_ops

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None
TABLES = ['reservations', 'stock']


def upgrade() -> None:
    migration_ops.capture_direct_writes(TABLES)


def downgrade() -> None:
    migration_ops.undo_capture_direct_writes(TABLES)
