"""initial schema

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common import migration_ops

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_ops.create_inbox_and_dead_letters()
    op.create_table('saga_history',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('saga_id', sa.Text(), nullable=False),
    sa.Column('message_type', sa.Text(), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_saga_history_saga_id'), 'saga_history', ['saga_id'], unique=False)
    op.create_table('saga_instance',
    sa.Column('saga_id', sa.Text(), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('awaiting_command_id', sa.Text(), nullable=True),
    sa.Column('awaiting_replies', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('pending_commands', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('saga_id')
    )
    op.create_index(op.f('ix_saga_instance_status'), 'saga_instance', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_saga_instance_status'), table_name='saga_instance')
    op.drop_table('saga_instance')
    op.drop_index(op.f('ix_saga_history_saga_id'), table_name='saga_history')
    op.drop_table('saga_history')
    op.drop_table('dead_letter')
    op.drop_table('inbox')
