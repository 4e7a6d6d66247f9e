"""The payments database: one payment per order."""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.tables import add_common_tables
from services.payments.domain import Payment, PaymentStatus

metadata = MetaData()
common = add_common_tables(metadata)
outbox, inbox, idempotency, counters = (common["outbox"], common["inbox"], common["idempotency_key"],
                                        common["delivery_counter"])

payments = Table(
    "payments", metadata,
    Column("payment_id", Text, primary_key=True),
    Column("order_id", Text, nullable=False, unique=True),
    Column("customer_id", Text, nullable=True),  # null on payments older than migration 0007
    Column("amount", Numeric(18, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("provider_ref", Text, nullable=True),
    Column("decline_code", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('AUTHORIZED','CAPTURED','DECLINED','VOIDED','REFUNDED')", name="payments_status_valid"),
)


barriers = Table(
    "payment_barrier", metadata,
    Column("order_id", Text, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# statements built once: building one per call costs more CPU than its round trip (docs/benchmarks/FINDINGS.md)
_ADD_BARRIER = pg_insert(barriers).on_conflict_do_nothing()
_BY_ORDER = select(payments).where(payments.c.order_id == bindparam("order_id"))
_BY_ORDER_LOCKED = _BY_ORDER.with_for_update()
# the order's payment (locked) and whether a void left a barrier, in one round trip: the CTE takes the row lock, the
# outer join returns one row either way
_BY_ORDER_AND_BARRIER = text("""WITH p AS (SELECT * FROM payments WHERE order_id = :order_id FOR UPDATE)
    SELECT p.*, EXISTS (SELECT 1 FROM payment_barrier WHERE order_id = :order_id) AS barred
    FROM (SELECT 1) AS one LEFT JOIN p ON true""")
_INSERT = payments.insert()
_UPDATE = (payments.update()
           .where(payments.c.payment_id == bindparam("b_payment_id"), payments.c.version == bindparam("b_version"))
           .values(status=bindparam("b_status"), version=bindparam("b_new_version"), updated_at=func.now()))


def by_order_with_barrier(conn: Connection, order_id: str) -> tuple[Payment | None, bool]:
    """by_order(for_update=True) and whether the order has a void's barrier: (the payment, locked, if any; barred)."""
    row = conn.execute(_BY_ORDER_AND_BARRIER, {"order_id": order_id}).one()
    return (from_row(row) if row.payment_id is not None else None), bool(row.barred)


def add_barrier(conn: Connection, order_id: str) -> None:
    conn.execute(_ADD_BARRIER, {"order_id": order_id})


def from_row(row: Any) -> Payment:
    return Payment(row.payment_id, row.order_id, row.amount, row.currency, PaymentStatus(row.status),
                   row.provider_ref, row.decline_code, row.version, customer_id=row.customer_id)


def by_order(conn: Connection, order_id: str, for_update: bool = False) -> Payment | None:
    row = conn.execute(_BY_ORDER_LOCKED if for_update else _BY_ORDER, {"order_id": order_id}).first()
    return from_row(row) if row else None


def insert(conn: Connection, p: Payment) -> None:
    conn.execute(_INSERT, {
        "payment_id": p.payment_id, "order_id": p.order_id, "amount": p.amount, "currency": p.currency,
        "status": p.status.value, "provider_ref": p.provider_ref, "decline_code": p.decline_code, "version": p.version,
        "customer_id": p.customer_id})


def update(conn: Connection, before: Payment, after: Payment) -> None:
    result = conn.execute(_UPDATE, {"b_payment_id": after.payment_id, "b_version": before.version,
                                    "b_status": after.status.value, "b_new_version": after.version})
    if result.rowcount != 1:
        raise RuntimeError(f"payment {after.payment_id} changed concurrently")


def to_json(p: Payment) -> dict:
    return {"payment_id": p.payment_id, "order_id": p.order_id, "status": p.status.value, "amount": str(p.amount),
            "currency": p.currency, "decline_code": p.decline_code, "version": p.version}
