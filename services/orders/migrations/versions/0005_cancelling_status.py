"""orders: CANCELLING status (a confirmed order being refunded)

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("orders_status_valid", "orders", type_="check")
    op.create_check_constraint("orders_status_valid", "orders",
                               "status IN ('PENDING','CONFIRMED','CANCELLING','CANCELLED')")


def downgrade() -> None:
    op.drop_constraint("orders_status_valid", "orders", type_="check")
    op.create_check_constraint("orders_status_valid", "orders", "status IN ('PENDING','CONFIRMED','CANCELLED')")
