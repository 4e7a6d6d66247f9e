"""dead letters to a topic; delivery counters

Revision ID: 0002
Revises: 0001
"""

from services.common import migration_ops

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_ops.dead_letters_to_topic()


def downgrade() -> None:
    migration_ops.undo_dead_letters_to_topic()
