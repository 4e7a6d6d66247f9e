"""The inventory database: stock levels, reservations (one per order) and their lines."""
from __future__ import annotations

from collections.abc import Iterable
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
from services.inventory.domain import Line, Price, ReservationStatus, StockLevel

metadata = MetaData()
common = add_common_tables(metadata)
outbox, inbox, idempotency, counters = (common["outbox"], common["inbox"], common["idempotency_key"],
                                        common["delivery_counter"])

stock = Table(
    "stock", metadata,
    Column("sku", Text, primary_key=True),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("committed", Integer, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("available >= 0 AND reserved >= 0 AND committed >= 0", name="stock_never_negative"),
)

price = Table(
    "price", metadata,
    Column("sku", Text, primary_key=True),
    Column("unit_price", Numeric(18, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("unit_price > 0", name="price_positive"),
)

reservations = Table(
    "reservations", metadata,
    Column("order_id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

reservation_lines = Table(
    "reservation_lines", metadata,
    Column("order_id", Text, primary_key=True),
    Column("sku", Text, primary_key=True),
    Column("quantity", Integer, nullable=False),
)


# statements built once: building one per call costs more CPU than its round trip (docs/benchmarks/FINDINGS.md)
_GET_LEVEL = select(stock).where(stock.c.sku == bindparam("sku"))
_LOCK_LEVELS = (select(stock).where(stock.c.sku.in_(bindparam("skus", expanding=True))).order_by(stock.c.sku)
                .with_for_update())
_SAVE_LEVEL = (stock.update().where(stock.c.sku == bindparam("b_sku"), stock.c.version == bindparam("b_version"))
               .values(available=bindparam("b_available"), reserved=bindparam("b_reserved"),
                       committed=bindparam("b_committed"), version=bindparam("b_new_version"), updated_at=func.now()))
# the reservation (locked) with its lines in one round trip: a row per line, or one row without a line
_RESERVATION = (select(reservations.c.status, reservation_lines.c.sku, reservation_lines.c.quantity)
                .select_from(reservations.outerjoin(reservation_lines,
                                                    reservation_lines.c.order_id == reservations.c.order_id))
                .where(reservations.c.order_id == bindparam("order_id"))
                .order_by(reservation_lines.c.sku).with_for_update(of=reservations))
# the reservation and its lines in one statement (the lines' rows from two arrays)
_INSERT_RESERVATION = text("""WITH r AS (INSERT INTO reservations (order_id, status) VALUES (:order_id, :status))
    INSERT INTO reservation_lines (order_id, sku, quantity)
    SELECT :order_id, sku, quantity FROM unnest(CAST(:skus AS text[]), CAST(:quantities AS integer[]))
        AS line(sku, quantity)""")
_SET_RESERVATION_STATUS = (reservations.update().where(reservations.c.order_id == bindparam("b_order_id"))
                           .values(status=bindparam("b_status"), updated_at=func.now()))


def _level(row: Any) -> StockLevel:
    return StockLevel(row.sku, row.available, row.reserved, row.committed, row.version)


def get_price(conn: Connection, sku: str, for_update: bool = False) -> Price | None:
    query = select(price).where(price.c.sku == sku)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return Price(row.sku, row.unit_price, row.currency, row.version) if row else None


def save_price(conn: Connection, p: Price) -> None:
    stmt = pg_insert(price).values(sku=p.sku, unit_price=p.unit_price, currency=p.currency, version=p.version)
    conn.execute(stmt.on_conflict_do_update(index_elements=["sku"], set_={
        "unit_price": stmt.excluded.unit_price, "currency": stmt.excluded.currency, "version": stmt.excluded.version,
        "updated_at": func.now()}))


def get_level(conn: Connection, sku: str) -> StockLevel | None:
    row = conn.execute(_GET_LEVEL, {"sku": sku}).first()
    return _level(row) if row else None


def lock_levels(conn: Connection, skus: Iterable[str]) -> dict[str, StockLevel]:
    """Row locks in sku order, so two orders on the same skus never deadlock each other."""
    rows = conn.execute(_LOCK_LEVELS, {"skus": sorted(set(skus))}).all()
    return {row.sku: _level(row) for row in rows}


def upsert_available(conn: Connection, sku: str, available: int) -> StockLevel:
    stmt = pg_insert(stock).values(sku=sku, available=available, reserved=0, committed=0, version=1)
    stmt = stmt.on_conflict_do_update(index_elements=["sku"], set_={
        "available": stmt.excluded.available, "version": stock.c.version + 1, "updated_at": func.now()})
    row = conn.execute(stmt.returning(stock)).one()
    return _level(row)


def save_levels(conn: Connection, before: dict[str, StockLevel], after: dict[str, StockLevel]) -> None:
    for sku, level in after.items():
        result = conn.execute(_SAVE_LEVEL, {"b_sku": sku, "b_version": before[sku].version,
                                            "b_available": level.available, "b_reserved": level.reserved,
                                            "b_committed": level.committed, "b_new_version": level.version})
        if result.rowcount != 1:
            raise RuntimeError(f"stock {sku} changed under a row lock")


def reservation(conn: Connection, order_id: str) -> tuple[ReservationStatus | None, list[Line]]:
    rows = conn.execute(_RESERVATION, {"order_id": order_id}).all()
    if not rows:
        return None, []
    return ReservationStatus(rows[0].status), [Line(r.sku, r.quantity) for r in rows if r.sku is not None]


def insert_reservation(conn: Connection, order_id: str, status: ReservationStatus, lines: list[Line]) -> None:
    conn.execute(_INSERT_RESERVATION, {"order_id": order_id, "status": status.value,
                                       "skus": [line.sku for line in lines],
                                       "quantities": [line.quantity for line in lines]})


def set_reservation_status(conn: Connection, order_id: str, status: ReservationStatus) -> None:
    conn.execute(_SET_RESERVATION_STATUS, {"b_order_id": order_id, "b_status": status.value})


def to_json(level: StockLevel, p: Price | None = None) -> dict:
    return {"sku": level.sku, "available": level.available, "reserved": level.reserved,
            "committed": level.committed, "version": level.version,
            "unit_price": str(p.unit_price) if p else None, "currency": p.currency if p else None,
            "price_version": p.version if p else None}
