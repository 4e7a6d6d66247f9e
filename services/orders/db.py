"""The orders database: tables and the mapping between rows and domain objects."""
from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    ForeignKey,
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
from services.orders.domain import CancelReason, CatalogPrice, Channel, Order, OrderLine, OrderStatus

metadata = MetaData()
common = add_common_tables(metadata)
outbox, inbox, idempotency, counters = (common["outbox"], common["inbox"], common["idempotency_key"],
                                        common["delivery_counter"])

orders = Table(
    "orders", metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("status", Text, nullable=False),
    Column("cancel_reason", Text, nullable=True),
    Column("total_amount", Numeric(18, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("payment_method", Text, nullable=False),
    Column("channel", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('PENDING','CONFIRMED','CANCELLING','CANCELLED')", name="orders_status_valid"),
    CheckConstraint("channel IN ('web','mobile','store','partner')", name="orders_channel_valid"),
)

order_lines = Table(
    "order_lines", metadata,
    Column("order_id", Text, ForeignKey("orders.order_id"), primary_key=True),
    Column("sku", Text, primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(18, 2), nullable=False),
)

# the orders service's copy of inventory's prices (PriceChanged events), what orders are priced with
catalog_price = Table(
    "catalog_price", metadata,
    Column("sku", Text, primary_key=True),
    Column("unit_price", Numeric(18, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# statements built once: building one per call costs more CPU than its round trip (docs/benchmarks/FINDINGS.md)
# the order with its lines in one round trip, a row per line (the order's row locked: FOR UPDATE OF orders)
_LOAD = (select(orders, order_lines.c.sku, order_lines.c.quantity, order_lines.c.unit_price)
         .select_from(orders.outerjoin(order_lines, order_lines.c.order_id == orders.c.order_id))
         .where(orders.c.order_id == bindparam("order_id")).order_by(order_lines.c.sku))
_LOAD_LOCKED = _LOAD.with_for_update(of=orders)
# the order and its lines in one statement (the lines' rows from arrays)
_INSERT = text("""WITH o AS (
        INSERT INTO orders (order_id, customer_id, status, total_amount, currency, payment_method, channel, version)
        VALUES (:order_id, :customer_id, :status, :total_amount, :currency, :payment_method, :channel, :version))
    INSERT INTO order_lines (order_id, sku, quantity, unit_price)
    SELECT :order_id, sku, quantity, unit_price
    FROM unnest(CAST(:skus AS text[]), CAST(:quantities AS integer[]), CAST(:unit_prices AS numeric[]))
        AS line(sku, quantity, unit_price)""")
_UPDATE_STATE = (orders.update()
                 .where(orders.c.order_id == bindparam("b_order_id"), orders.c.version == bindparam("b_version"))
                 .values(status=bindparam("b_status"), cancel_reason=bindparam("b_cancel_reason"),
                         version=bindparam("b_new_version"), updated_at=func.now()))


def load(conn: Connection, order_id: str, for_update: bool = False) -> Order | None:
    rows = conn.execute(_LOAD_LOCKED if for_update else _LOAD, {"order_id": order_id}).all()
    if not rows:
        return None
    row = rows[0]
    return Order(
        order_id=row.order_id, customer_id=row.customer_id,
        lines=tuple(OrderLine(r.sku, r.quantity, r.unit_price) for r in rows if r.sku is not None),
        currency=row.currency, payment_method=row.payment_method, status=OrderStatus(row.status),
        cancel_reason=CancelReason(row.cancel_reason) if row.cancel_reason else None, version=row.version,
        channel=Channel(row.channel) if row.channel else None,
    )


def insert(conn: Connection, order: Order) -> None:
    conn.execute(_INSERT, {
        "order_id": order.order_id, "customer_id": order.customer_id, "status": order.status.value,
        "total_amount": order.total_amount, "currency": order.currency, "payment_method": order.payment_method,
        "channel": order.channel.value if order.channel else None, "version": order.version,
        "skus": [line.sku for line in order.lines], "quantities": [line.quantity for line in order.lines],
        "unit_prices": [line.unit_price for line in order.lines]})


def update_state(conn: Connection, before: Order, after: Order) -> None:
    """Conditional on the version read: a lost race raises instead of overwriting."""
    result = conn.execute(_UPDATE_STATE, {
        "b_order_id": after.order_id, "b_version": before.version, "b_status": after.status.value,
        "b_cancel_reason": after.cancel_reason.value if after.cancel_reason else None,
        "b_new_version": after.version})
    if result.rowcount != 1:
        raise RuntimeError(f"order {after.order_id} changed concurrently (expected version {before.version})")


def to_json(order: Order) -> dict:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "cancel_reason": order.cancel_reason.value if order.cancel_reason else None,
        "items": [{"sku": line.sku, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                  for line in order.lines],
        "total_amount": str(order.total_amount),
        "currency": order.currency,
        "payment_method": order.payment_method,
        "channel": order.channel.value if order.channel else None,
        "version": order.version,
    }


_PRICES = select(catalog_price).where(catalog_price.c.sku.in_(bindparam("skus", expanding=True)))
_STORE_PRICE = pg_insert(catalog_price).values(sku=bindparam("sku"), unit_price=bindparam("unit_price"),
                                               currency=bindparam("currency"), version=bindparam("version"))
_STORE_PRICE = _STORE_PRICE.on_conflict_do_update(
    index_elements=["sku"],
    set_={"unit_price": _STORE_PRICE.excluded.unit_price, "currency": _STORE_PRICE.excluded.currency,
          "version": _STORE_PRICE.excluded.version, "updated_at": func.now()},
    # the highest version wins (domain.newer_price), whatever order the events arrive in
    where=_STORE_PRICE.excluded.version > catalog_price.c.version)


def prices(conn: Connection, skus: list[str]) -> dict[str, CatalogPrice]:
    rows = conn.execute(_PRICES, {"skus": sorted(set(skus))}).all()
    return {row.sku: CatalogPrice(row.unit_price, row.currency, row.version) for row in rows}


def store_price(conn: Connection, sku: str, price: CatalogPrice) -> None:
    conn.execute(_STORE_PRICE, {"sku": sku, "unit_price": price.unit_price, "currency": price.currency,
                                "version": price.version})
