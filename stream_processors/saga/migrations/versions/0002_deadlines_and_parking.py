"""deadlines, attempts and parking

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('saga_instance', sa.Column('attempt', sa.Integer(), server_default='1', nullable=False))
    op.add_column('saga_instance', sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('saga_instance', sa.Column('parked_reason', sa.Text(), nullable=True))
    op.add_column('saga_instance', sa.Column('parked_from', sa.Text(), nullable=True))
    op.create_index(op.f('ix_saga_instance_deadline_at'), 'saga_instance', ['deadline_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_saga_instance_deadline_at'), table_name='saga_instance')
    op.drop_column('saga_instance', 'parked_from')
    op.drop_column('saga_instance', 'parked_reason')
    op.drop_column('saga_instance', 'deadline_at')
    op.drop_column('saga_instance', 'attempt')
