"""The order view's tables in the views database, and the reads the order-queries API serves. Written by the
read-model worker (stream_processors/views/store.py), read by services/queries: both import them from here, so
neither side imports the other."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, Numeric, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB

from services.common.counters import counters_table

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


def load(conn: Connection, order_id: str) -> Any:
    return conn.execute(select(order_view).where(order_view.c.order_id == order_id)).first()


def by_customer(conn: Connection, customer_id: str, limit: int, before: str | None) -> Sequence[Any]:
    """A customer's orders, newest first, `limit` at a time (keyset pagination on placed_at, order_id)."""
    query = select(order_view).where(order_view.c.customer_id == customer_id)
    if before:
        query = query.where(text("(placed_at, order_id) < (SELECT placed_at, order_id FROM order_view "
                                 "WHERE order_id = :before)")).params(before=before)
    return conn.execute(query.order_by(order_view.c.placed_at.desc().nulls_last(), order_view.c.order_id.desc())
                        .limit(limit)).all()


def timeline_of(conn: Connection, order_id: str) -> Sequence[Any]:
    return conn.execute(select(timeline).where(timeline.c.order_id == order_id)
                        .order_by(timeline.c.written_at.nulls_last(), timeline.c.applied_at)).all()
