"""The views database (a cluster of its own): the order view, its timeline, and delivery counters.

One transaction per event: the timeline row (keyed by event id, so it is also the dedup record) and the monotonic
updates of the view row commit together."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (Column, Connection, DateTime, Integer, MetaData, Numeric, Table, Text, func, literal, select,
                        text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.counters import counter_add, counters_table
from stream_processors.views.projection import PAYMENT_RANK, STOCK_RANK, ViewChange

metadata = MetaData()
counters = counters_table(metadata)

order_view = Table(
    "order_view", metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=True, index=True),
    Column("status", Text, nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("order_version", Integer, nullable=False, server_default="0"),
    Column("payment_status", Text, nullable=True),
    Column("payment_rank", Integer, nullable=False, server_default="0"),
    Column("stock_status", Text, nullable=True),
    Column("stock_rank", Integer, nullable=False, server_default="0"),
    Column("currency", Text, nullable=True),
    Column("payment_method", Text, nullable=True),
    Column("total_amount", Numeric(18, 2), nullable=True),
    Column("items", JSONB, nullable=True),
    Column("placed_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

timeline = Table(
    "order_timeline", metadata,
    Column("event_id", Text, primary_key=True),
    Column("order_id", Text, nullable=False, index=True),
    Column("event_type", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("written_at", DateTime(timezone=True), nullable=True),
    Column("kafka_at", DateTime(timezone=True), nullable=True),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

CONSUMER = "order-view"


def apply(conn: Connection, change: ViewChange) -> bool:
    """Applies one event; False when it was applied before (a duplicate changes nothing)."""
    e = change.entry
    inserted = conn.execute(pg_insert(timeline).values(
        event_id=e.event_id, order_id=change.order_id, event_type=e.event_type, topic=e.topic, detail=e.detail,
        written_at=e.written_at, kafka_at=e.kafka_at).on_conflict_do_nothing(index_elements=["event_id"])
        .returning(timeline.c.event_id)).first()
    if inserted is None:
        counter_add(conn, counters, CONSUMER, "duplicates")
        return False
    conn.execute(pg_insert(order_view).values(order_id=change.order_id)
                 .on_conflict_do_nothing(index_elements=["order_id"]))
    row = order_view.c
    if change.details:
        typed = {**change.details}
        if "total_amount" in typed:
            typed["total_amount"] = Decimal(typed["total_amount"])
        if "items" in typed:
            typed["items"] = literal(typed["items"], JSONB)
            typed["placed_at"] = e.written_at
        values: dict[str, Any] = {k: func.coalesce(order_view.c[k], v) for k, v in typed.items()}
        conn.execute(order_view.update().where(row.order_id == change.order_id).values(**values))
    if change.status is not None and change.order_version is not None:
        conn.execute(order_view.update()
                     .where(row.order_id == change.order_id, row.order_version < change.order_version)
                     .values(status=change.status, cancel_reason=change.cancel_reason,
                             order_version=change.order_version, updated_at=func.now()))
    if change.payment_status is not None:
        rank = PAYMENT_RANK[change.payment_status]
        conn.execute(order_view.update().where(row.order_id == change.order_id, row.payment_rank < rank)
                     .values(payment_status=change.payment_status, payment_rank=rank, updated_at=func.now()))
    if change.stock_status is not None:
        rank = STOCK_RANK[change.stock_status]
        conn.execute(order_view.update().where(row.order_id == change.order_id, row.stock_rank < rank)
                     .values(stock_status=change.stock_status, stock_rank=rank, updated_at=func.now()))
    return True


def count(conn: Connection, counter: str) -> None:
    counter_add(conn, counters, CONSUMER, counter)


def load(conn: Connection, order_id: str) -> Any:
    return conn.execute(select(order_view).where(order_view.c.order_id == order_id)).first()


def by_customer(conn: Connection, customer_id: str, limit: int, before: str | None) -> list[Any]:
    """A customer's orders, newest first, `limit` at a time (keyset pagination on placed_at, order_id)."""
    query = select(order_view).where(order_view.c.customer_id == customer_id)
    if before:
        query = query.where(text("(placed_at, order_id) < (SELECT placed_at, order_id FROM order_view "
                                 "WHERE order_id = :before)")).params(before=before)
    return conn.execute(query.order_by(order_view.c.placed_at.desc().nulls_last(), order_view.c.order_id.desc())
                        .limit(limit)).all()


def timeline_of(conn: Connection, order_id: str) -> list[Any]:
    return conn.execute(select(timeline).where(timeline.c.order_id == order_id)
                        .order_by(timeline.c.written_at.nulls_last(), timeline.c.applied_at)).all()
