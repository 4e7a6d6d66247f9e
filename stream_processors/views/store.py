"""The views database (a cluster of its own): the order view, its timeline, and delivery counters.

One statement per event, in the transaction of its batch: the timeline row (keyed by event id, so it is also the
dedup record) and the monotonic upsert of the view row commit together."""
from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import Connection, text

from services.common.counters import counter_add
from services.common.order_view import counters
from stream_processors.views.projection import PAYMENT_RANK, STOCK_RANK, ViewChange

CONSUMER = "order-view"


# One statement per event (one round trip instead of three to five): the timeline row, whose event id is also the
# dedup record, and only if it is new, the view row's upsert with the monotonic rules: descriptive fields fill in
# once; the order's state moves only to a higher order version, payment and stock statuses only to a higher rank.
_APPLY = text("""
WITH t AS (
    INSERT INTO order_timeline (event_id, order_id, event_type, topic, detail, written_at, kafka_at)
    VALUES (:event_id, :order_id, :event_type, :topic, :detail, :written_at, :kafka_at)
    ON CONFLICT (event_id) DO NOTHING RETURNING 1
), v AS (
    INSERT INTO order_view AS ov (order_id, customer_id, currency, payment_method, total_amount, items, placed_at,
                                  status, cancel_reason, order_version, payment_status, payment_rank, stock_status,
                                  stock_rank)
    SELECT :order_id, :customer_id, :currency, :payment_method, CAST(:total_amount AS numeric),
           CAST(:items AS jsonb), CAST(:placed_at AS timestamptz), :status, :cancel_reason,
           CAST(:order_version AS integer), :payment_status, CAST(:payment_rank AS integer), :stock_status,
           CAST(:stock_rank AS integer)
    WHERE EXISTS (SELECT 1 FROM t)
    ON CONFLICT (order_id) DO UPDATE SET
        customer_id = coalesce(ov.customer_id, excluded.customer_id),
        currency = coalesce(ov.currency, excluded.currency),
        payment_method = coalesce(ov.payment_method, excluded.payment_method),
        total_amount = coalesce(ov.total_amount, excluded.total_amount),
        items = coalesce(ov.items, excluded.items),
        placed_at = coalesce(ov.placed_at, excluded.placed_at),
        status = CASE WHEN excluded.order_version > ov.order_version THEN excluded.status ELSE ov.status END,
        cancel_reason = CASE WHEN excluded.order_version > ov.order_version THEN excluded.cancel_reason
                             ELSE ov.cancel_reason END,
        order_version = greatest(ov.order_version, excluded.order_version),
        payment_status = CASE WHEN excluded.payment_rank > ov.payment_rank THEN excluded.payment_status
                              ELSE ov.payment_status END,
        payment_rank = greatest(ov.payment_rank, excluded.payment_rank),
        stock_status = CASE WHEN excluded.stock_rank > ov.stock_rank THEN excluded.stock_status
                            ELSE ov.stock_status END,
        stock_rank = greatest(ov.stock_rank, excluded.stock_rank),
        updated_at = CASE WHEN excluded.order_version > ov.order_version OR excluded.payment_rank > ov.payment_rank
                               OR excluded.stock_rank > ov.stock_rank THEN now() ELSE ov.updated_at END
)
SELECT count(*) FROM t""")


def apply(conn: Connection, change: ViewChange) -> bool:
    """Applies one event; False when it was applied before (a duplicate changes nothing)."""
    e, d = change.entry, change.details
    with_state = change.status is not None and change.order_version is not None
    inserted = conn.execute(_APPLY, {
        "event_id": e.event_id, "order_id": change.order_id, "event_type": e.event_type, "topic": e.topic,
        "detail": e.detail, "written_at": e.written_at, "kafka_at": e.kafka_at,
        "customer_id": d.get("customer_id"), "currency": d.get("currency"), "payment_method": d.get("payment_method"),
        "total_amount": str(Decimal(d["total_amount"])) if "total_amount" in d else None,
        "items": json.dumps(d["items"]) if "items" in d else None,
        "placed_at": e.written_at if "items" in d else None,
        "status": change.status if with_state else None,
        "cancel_reason": change.cancel_reason if with_state else None,
        "order_version": change.order_version if with_state else 0,
        "payment_status": change.payment_status,
        "payment_rank": PAYMENT_RANK[change.payment_status] if change.payment_status is not None else 0,
        "stock_status": change.stock_status,
        "stock_rank": STOCK_RANK[change.stock_status] if change.stock_status is not None else 0,
    }).scalar_one()
    if not inserted:
        counter_add(conn, counters, CONSUMER, "duplicates")
        return False
    return True


def count(conn: Connection, counter: str) -> None:
    counter_add(conn, counters, CONSUMER, counter)
